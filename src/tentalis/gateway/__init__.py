"""The HTTP faces of tentalis, one package per server; FastAPI routers, no wiring.

- ``proxy`` — the intercept proxy: OpenAI-compatible, every call recorded as a session turn;
- ``bridge`` — HTTP ↔ bus for agent runtimes: tasks, status, feedback, live events;
- ``modelserver`` — the local engine behind OpenAI's API, with runtime adapters;
- ``security`` — what guards every server: API keys, rate limits, body limits, redaction;
- ``openai`` — OpenAI's request and response shapes;
- ``publisher`` / ``spool`` — publishing off the request path, spooling while the bus is down.

Each server's routes are an ``APIRouter`` whose state comes through one dependency
(``proxy_state``, ``bridge_state``, ``model_server_state``), so a route can be mounted
alone with ``app.dependency_overrides``. Settings are read in :mod:`tentalis.services`.
"""
