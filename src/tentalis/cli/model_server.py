"""``tentalis serve-model`` and ``tentalis keys``: the model server and its API keys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tentalis.cli.errors import exits_cleanly
from tentalis.cli.options import setting_option
from tentalis.config import load_settings

keys_app = typer.Typer(help="Gateway API keys, stored hashed (GATEWAY_API_KEY_FILE).",
                       no_args_is_help=True)
KeyFile = Annotated[Path | None, typer.Option(
    "--file", help="Key file (default: GATEWAY_API_KEY_FILE, else <home>/gateway_keys).")]


@exits_cleanly
def serve_model(
    port: Annotated[int | None, setting_option("gateway", "model_server_port")] = None,
    host: Annotated[str | None, setting_option("gateway", "host")] = None,
    model: Annotated[str | None, setting_option("inference", "model")] = None,
) -> None:
    """Serve the model over an OpenAI-compatible API, with adapters from the store."""
    from tentalis.services.model_server import run_model_server

    settings = load_settings(model_server_port=port, gateway_host=host, llm_model=model)
    asyncio.run(run_model_server(settings))


def _key_file(file: Path | None) -> Path:
    settings = load_settings()
    return file or settings.gateway.api_key_file or settings.tentalis_home / "gateway_keys"


@keys_app.command("add")
@exits_cleanly
def keys_add(
    file: KeyFile = None,
    label: Annotated[str, typer.Option(help="A note stored next to the hash.")] = "",
) -> None:
    """Create a key, store its hash, and print the key (shown this once only)."""
    from tentalis.gateway.security.keys import add_key

    path = _key_file(file)
    key = add_key(path, label=label)
    typer.echo(key)
    typer.echo(f"(hash appended to {path}; the key itself is stored nowhere)", err=True)


@keys_app.command("hash")
@exits_cleanly
def keys_hash(file: KeyFile = None) -> None:
    """Replace plaintext keys in the key file by their hashes."""
    from tentalis.gateway.security.keys import rehash_file

    path = _key_file(file)
    typer.echo(f"{rehash_file(path)} plaintext key(s) hashed in {path}")


def register_model_server_commands(app: typer.Typer) -> None:
    """Add ``serve-model`` and ``keys`` to the top-level CLI."""
    app.command("serve-model")(serve_model)
    app.add_typer(keys_app, name="keys")
