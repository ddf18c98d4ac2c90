"""Every environment variable tentalis reads, and the section field it sets.

A variable's name is its flat key in lower case (``NATS_URL`` → ``nats_url``). The same
flat keys work in the TOML file and as keyword arguments of ``load_settings``; a section
can also be given whole (``[guard]`` in TOML, ``guard={...}`` as a keyword), with its own
field names. A field that has no variable is set through its section only.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

TOP = ""  # the "section" of the fields of Settings itself

# variable (lower case) → (section, field)
VARIABLES: dict[str, tuple[str, str]] = {
    "tentalis_home": (TOP, "tentalis_home"),
    "tentalis_store": (TOP, "tentalis_store"),
    "tentalis_seed": (TOP, "tentalis_seed"),
    "log_level": (TOP, "log_level"),
    "nats_url": ("bus", "url"),
    "nats_embedded": ("bus", "embedded"),
    "nats_connect_timeout": ("bus", "connect_timeout"),
    "bus_max_deliver": ("bus", "max_deliver"),
    "bus_ack_wait_seconds": ("bus", "ack_wait_seconds"),
    "bus_stream_max_age_days": ("bus", "stream_max_age_days"),
    "llm_model": ("inference", "model"),
    "inference_backend": ("inference", "backend"),
    "inference_base_url": ("inference", "base_url"),
    "inference_api_key": ("inference", "api_key"),
    "inference_device": ("inference", "device"),
    "inference_dtype": ("inference", "dtype"),
    "inference_max_batch": ("inference", "max_batch"),
    "inference_batch_window_ms": ("inference", "batch_window_ms"),
    "ollama_host": ("inference", "ollama_host"),
    "max_new_tokens": ("inference", "max_new_tokens"),
    "temperature": ("inference", "temperature"),
    "judge_backend": ("judge", "backend"),
    "judge_base_url": ("judge", "base_url"),
    "judge_model": ("judge", "model"),
    "judge_votes": ("judge", "votes"),
    "judge_aggregate": ("judge", "aggregate"),
    "judge_max_retries": ("judge", "max_retries"),
    "worker_id": ("worker", "worker_id"),
    "worker_environments": ("worker", "environments"),
    "worker_adapter": ("worker", "follow_adapter"),
    "manager_id": ("manager", "manager_id"),
    "task_timeout_seconds": ("manager", "task_timeout"),
    "manager_review": ("manager", "review"),
    "manager_max_in_flight": ("manager", "max_in_flight"),
    "trainer_backend": ("training", "backend"),
    "training_clip_epsilon_high": ("training", "epsilon_high"),
    "guard_enabled": ("guard", "enabled"),
    "guard_warmup": ("guard", "warmup"),
    "guard_window": ("guard", "window"),
    "guard_check_every": ("guard", "check_every"),
    "guard_length_z": ("guard", "length_z_threshold"),
    "guard_kl_threshold": ("guard", "kl_threshold"),
    "guard_kl_rising_checks": ("guard", "kl_rising_checks"),
    "guard_judge_component": ("guard", "judge_component"),
    "guard_cheap_component": ("guard", "cheap_component"),
    "guard_gap_threshold": ("guard", "gap_threshold"),
    "guard_rho_drop": ("guard", "rho_drop_threshold"),
    "guard_min_pairs": ("guard", "min_pairs"),
    "guard_hard_stop_signals": ("guard", "hard_stop_signals"),
    "guard_escalate_after": ("guard", "escalate_after"),
    "gateway_host": ("gateway", "host"),
    "gateway_api_keys": ("gateway", "api_keys"),
    "gateway_api_key_file": ("gateway", "api_key_file"),
    "gateway_max_body_bytes": ("gateway", "max_body_bytes"),
    "gateway_max_n": ("gateway", "max_n"),
    "gateway_max_tokens": ("gateway", "max_tokens"),
    "gateway_max_messages": ("gateway", "max_messages"),
    "gateway_rate_limit_per_minute": ("gateway", "rate_limit_per_minute"),
    "bridge_enabled": ("gateway", "bridge_enabled"),
    "bridge_port": ("gateway", "bridge_port"),
    "intercept_enabled": ("gateway", "intercept_enabled"),
    "intercept_port": ("gateway", "intercept_port"),
    "intercept_backend_url": ("gateway", "intercept_backend_url"),
    "intercept_backend_api_key": ("gateway", "intercept_backend_api_key"),
    "intercept_timeout_seconds": ("gateway", "intercept_timeout_seconds"),
    "intercept_training_data": ("gateway", "intercept_training_data"),
    "intercept_session_min_messages": ("gateway", "intercept_session_min_messages"),
    "intercept_side_turn_pattern": ("gateway", "intercept_side_turn_pattern"),
    "model_server_enabled": ("gateway", "model_server_enabled"),
    "model_server_port": ("gateway", "model_server_port"),
    "model_server_id": ("gateway", "model_server_id"),
}

_BY_FIELD = {place: name for name, place in VARIABLES.items()}


def variable_of(section: str, field: str) -> str | None:
    """The environment variable that sets ``section.field`` (None when none does)."""
    name = _BY_FIELD.get((section, field))
    return name.upper() if name else None


def nest(values: Mapping[str, Any], sections: set[str], *, strict: bool) -> dict[str, Any]:
    """Flat keys and whole sections → ``{section: {field: value}}`` (top-level fields stay).

    A flat key beats the same field given in its section's table. Unknown keys raise
    KeyError when ``strict``, else are left out.
    """
    out: dict[str, Any] = {}
    flat: list[tuple[str, str, Any]] = []
    for key, value in values.items():
        name = key.lower()
        if name in VARIABLES:
            flat.append((*VARIABLES[name], value))
        elif name in sections:
            out[name] = dict(value) if isinstance(value, Mapping) else value
        elif strict:
            raise KeyError(key)
    for section, field, value in flat:
        if section == TOP:
            out[field] = value
        elif isinstance(out.get(section), Mapping | None):
            out.setdefault(section, {})[field] = value
        else:  # the section was given as a model: update a copy
            out[section] = out[section].model_copy(update={field: value})
    return out


class FlatSource(PydanticBaseSettingsSource):
    """A settings source over flat and sectioned keys (keyword arguments, environment,
    TOML), nested into sections so that sources merge field by field."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any],
                 *, strict: bool = False) -> None:
        super().__init__(settings_cls)
        sections = {n for n, f in settings_cls.model_fields.items() if _is_section(f)}
        self.values = nest(values, sections, strict=strict)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False  # unused: __call__ answers

    def __call__(self) -> dict[str, Any]:
        return self.values


def environment_values() -> dict[str, str]:
    """The variables of :data:`VARIABLES` set in the environment (names case-insensitive)."""
    return {k.lower(): v for k, v in os.environ.items() if k.lower() in VARIABLES}


def toml_values(path: Path) -> dict[str, Any]:
    """The TOML config file's keys (empty when there is no file)."""
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def _is_section(field: FieldInfo) -> bool:
    annotation = field.annotation
    return isinstance(annotation, type) and hasattr(annotation, "model_fields")
