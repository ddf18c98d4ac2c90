"""Where tentalis keeps its state and its config file, and the default model."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"


def default_home() -> Path:
    """Where tentalis keeps its state: ``$TENTALIS_HOME`` or ``~/.tentalis``."""
    return Path(os.environ.get("TENTALIS_HOME") or Path.home() / ".tentalis").expanduser()


def config_file_path() -> Path:
    """The TOML config file: ``$TENTALIS_CONFIG`` or ``<home>/config.toml``."""
    explicit = os.environ.get("TENTALIS_CONFIG")
    return Path(explicit).expanduser() if explicit else default_home() / "config.toml"
