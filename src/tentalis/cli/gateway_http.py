"""``tentalis proxy`` and ``tentalis bridge``: the HTTP faces, one process each."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tentalis.cli.errors import exits_cleanly
from tentalis.cli.options import setting_option
from tentalis.config import load_settings

Host = Annotated[str | None, setting_option("gateway", "host")]


@exits_cleanly
def proxy(
    port: Annotated[int | None, setting_option("gateway", "intercept_port")] = None,
    host: Host = None,
    backend: Annotated[str | None, setting_option("gateway", "intercept_backend_url")] = None,
) -> None:
    """Run the intercept proxy: OpenAI-compatible, records every call as a SessionEvent."""
    from tentalis.services.gateway import run_proxy

    settings = load_settings(intercept_port=port, gateway_host=host,
                             intercept_backend_url=backend)
    asyncio.run(run_proxy(settings))


@exits_cleanly
def bridge(
    port: Annotated[int | None, setting_option("gateway", "bridge_port")] = None,
    host: Host = None,
) -> None:
    """Run the bridge: tasks, status, feedback and live events over HTTP."""
    from tentalis.services.gateway import run_bridge

    settings = load_settings(bridge_port=port, gateway_host=host)
    asyncio.run(run_bridge(settings))


def register_gateway_commands(app: typer.Typer) -> None:
    """Add ``proxy`` and ``bridge`` to the top-level CLI."""
    app.command("proxy")(proxy)
    app.command("bridge")(bridge)
