"""CLI options bound to Settings fields: the help is the field's description (and its
environment variable), so each option is documented once, on the config model."""

from __future__ import annotations

from typing import Any

import typer

from tentalis.config import Settings
from tentalis.config.variables import variable_of


def field_help(section: str, field: str) -> str:
    """The description of ``settings.<section>.<field>``, with the variable that sets it."""
    model = Settings.model_fields[section].annotation
    description = model.model_fields[field].description  # type: ignore[union-attr]
    assert description, f"{section}.{field} needs a description to be a CLI option"
    variable = variable_of(section, field)
    return f"{description} ({variable})" if variable else description


def setting_option(section: str, field: str, *param_decls: str, **kwargs: Any) -> Any:
    """A Typer option for ``settings.<section>.<field>``, its help taken from the field."""
    return typer.Option(*param_decls, help=field_help(section, field), **kwargs)


def train_option(field: str, *param_decls: str, **kwargs: Any) -> Any:
    """A ``tentalis train`` option for the TrainConfig field ``field``."""
    return setting_option("training", field, *param_decls, **kwargs)
