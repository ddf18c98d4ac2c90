"""OpenAI's HTTP API as the gateway speaks it: the shapes the proxy declares and forwards
(``shapes``), the requests the model server validates (``schema``), and the bodies and
SSE chunks it renders (``render``)."""
