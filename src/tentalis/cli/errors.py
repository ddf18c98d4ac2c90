"""The one place where domain errors become exit codes and readable messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from tentalis.errors import TentalisError

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)


def exits_cleanly(fn: F) -> F:
    """Run a command; a TentalisError prints its message and exits with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TentalisError as exc:
            err_console.print(f"[bold red]error:[/bold red] {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
