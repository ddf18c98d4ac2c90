"""Errors named by the boundary they cross.

Each carries a message that says what went wrong and, where there is one, how to fix it.
The CLI maps these to exit codes in one place (``tentalis.cli.errors``).
"""

from __future__ import annotations


class TentalisError(Exception):
    """Base class of every error tentalis raises on purpose."""

    exit_code: int = 1


class ConfigError(TentalisError):
    """Invalid settings or config file."""

    exit_code = 2


class BusError(TentalisError):
    """The message bus could not be reached or refused an operation."""

    exit_code = 3


class EventDecodeError(TentalisError):
    """A payload is not a valid tentalis event (malformed JSON, unknown kind, bad schema)."""


class ModelStoreError(TentalisError):
    """A model could not be fetched, converted or loaded."""

    exit_code = 4


class InferenceError(TentalisError):
    """A generation request failed."""

    exit_code = 5


class AdapterError(InferenceError):
    """A LoRA adapter could not be loaded, found or removed."""


class ScoringError(TentalisError):
    """A scorer could not score a result."""


class StoreError(TentalisError):
    """The experience store could not be read or written."""

    exit_code = 6


class TrainingError(TentalisError):
    """Training could not start or continue."""

    exit_code = 7


class PrerequisiteError(TentalisError):
    """Something the requested feature needs is missing; the message says how to get it."""

    exit_code = 8
