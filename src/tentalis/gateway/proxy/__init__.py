"""The intercept proxy: an OpenAI-compatible front that turns every call into training data.

Clients point their OpenAI base URL here; each call is forwarded to the one backend named
in the configuration (``INTERCEPT_BACKEND_URL``; nothing in a request can change it) and
answered with the backend's bytes, streamed as they arrive. After the answer has gone
out, the call becomes a :class:`~tentalis.events.SessionEvent` (one per choice) handed to
the :class:`EventPublisher`, which publishes it off the request path. Sessions, turn types
and next-state links: see :mod:`tentalis.gateway.proxy.sessions` (every answer names its
session in ``X-Session-Id``); the token ids and logprobs asked for on every trainable call:
:mod:`tentalis.gateway.proxy.training`.

What is recorded passes through :func:`redact`: API keys, bearer tokens and ``key=``
parameters are masked in messages and completions too. The prompt is otherwise recorded as
sent: it is the user's content and the training data. The backend receives it unchanged.

Backend failures become OpenAI-shaped errors: unreachable → 502, too slow → 504, a 5xx or
a refused proxy credential → 502, any other 4xx passes through with its message. The call
is still recorded (``trainable=False``, ``finish_reason="error:<why>"``), and so is a call
the proxy itself refuses with 400 (over a cap, a bad session header, a redirect field).
"""

from __future__ import annotations

from tentalis.gateway.proxy.app import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.proxy.routes import proxy_state, router
from tentalis.gateway.proxy.state import ProxyState

__all__ = ["ProxyConfig", "ProxyState", "create_proxy_app", "proxy_state", "router"]
