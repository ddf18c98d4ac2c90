"""Schemathesis (Python API, in-process ASGI) against the bridge's and the proxy's OpenAPI
schemas: generated requests never get a 5xx, and every answer matches the schema.

``GET /v1/events`` is left out: it is an endless event stream, which a request-response
fuzzer cannot end; its contract is tested in test_bridge.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.bridge import create_bridge_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.store import ExperienceStore

KEY = "tnt-schemathesis-key-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
_TMP = Path(tempfile.mkdtemp(prefix="tentalis-schemathesis-"))
_SECURITY = SecurityConfig.with_keys(KEY, rate_limit_per_minute=0)


def _bridge_app():  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    bus._connected = True  # connect() only sets this; no event loop exists yet at import
    store = ExperienceStore(_TMP / "bridge.db")
    return create_bridge_app(bus, EventPublisher(bus, Spool(_TMP / "bridge.jsonl")), store,
                             _SECURITY)


def _proxy_app():  # type: ignore[no-untyped-def]
    from tests_gateway_backend import instant_backend  # type: ignore[import-not-found]

    bus = MemoryBus()
    bus._connected = True
    backend = httpx.AsyncClient(transport=httpx.ASGITransport(app=instant_backend()),
                                base_url="http://backend")
    config = ProxyConfig(backend_url="http://backend", spool_path=_TMP / "proxy.jsonl")
    return create_proxy_app(config, EventPublisher(bus, Spool(config.spool_path)), _SECURITY,
                            client=backend)


def _load_backend_module() -> None:
    """Make the instant backend from this package's conftest importable by name."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("tests_gateway_backend",
                                                  Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_gateway_backend"] = module
    spec.loader.exec_module(module)


_load_backend_module()
bridge_schema = schemathesis.openapi.from_asgi("/openapi.json", _bridge_app(),
                                               headers=AUTH).exclude(path="/v1/events")
proxy_schema = schemathesis.openapi.from_asgi("/openapi.json", _proxy_app(), headers=AUTH)
_FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@bridge_schema.parametrize()
@_FAST
def test_bridge_schema(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers=AUTH, checks=CHECKS, excluded_checks=[negative_data_rejection])


@proxy_schema.parametrize()
@_FAST
def test_proxy_schema(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers=AUTH, checks=CHECKS, excluded_checks=[negative_data_rejection])
