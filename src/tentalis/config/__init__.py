"""Settings: every environment variable tentalis reads, by section.

Each section is the configuration of one component and is that component's config class:
``settings.bus``, ``settings.inference``, ``settings.judge`` (:class:`JudgeConfig`),
``settings.worker`` (:class:`WorkerConfig`), ``settings.manager`` (:class:`ManagerConfig`),
``settings.training`` (:class:`TrainConfig`), ``settings.guard`` (:class:`GuardConfig`),
``settings.gateway``. State paths, the seed and the log level sit on Settings itself.

Precedence, highest first: explicit keyword arguments (the CLI), environment variables,
the TOML config file (``$TENTALIS_CONFIG``, else ``$TENTALIS_HOME/config.toml``), defaults.
Environment variables keep their flat names (``NATS_URL``, ``LLM_MODEL``, ``GUARD_WARMUP``
…; the table is :data:`tentalis.config.variables.VARIABLES`); in the TOML file the same
names in lower case still load, beside section tables (``[guard]`` ``warmup = 32``), which
is what ``tentalis init`` writes.

An invalid value fails at start-up with a :class:`~tentalis.errors.ConfigError` that names
the variable and what it accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tentalis.config.agents import ManagerConfig, WorkerConfig
from tentalis.config.guard import GuardConfig
from tentalis.config.judge import JudgeConfig
from tentalis.config.paths import DEFAULT_MODEL, config_file_path, default_home
from tentalis.config.sections import BusConfig, GatewayConfig, InferenceConfig
from tentalis.config.training import TrainConfig
from tentalis.config.variables import (
    VARIABLES,
    FlatSource,
    environment_values,
    nest,
    toml_values,
    variable_of,
)
from tentalis.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "BusConfig",
    "GatewayConfig",
    "GuardConfig",
    "InferenceConfig",
    "JudgeConfig",
    "ManagerConfig",
    "Settings",
    "TrainConfig",
    "WorkerConfig",
    "config_file_path",
    "default_home",
    "load_settings",
]

SECRETS = {"inference": {"api_key"}, "gateway": {"api_keys", "intercept_backend_api_key"}}

# Fields a section takes from another section ("": Settings itself), passed in this one
# place: the worker generates with the inference section's budget and consumes with the
# bus section's delivery policy; every seeded component uses TENTALIS_SEED.
LINKS: dict[str, dict[str, tuple[str, str]]] = {
    "worker": {
        "batch_size": ("inference", "max_batch"),
        "max_new_tokens": ("inference", "max_new_tokens"),
        "temperature": ("inference", "temperature"),
        "max_deliver": ("bus", "max_deliver"),
        "ack_wait": ("bus", "ack_wait_seconds"),
        "seed": ("", "tentalis_seed"),
    },
    "judge": {"seed": ("", "tentalis_seed")},
    "training": {"seed": ("", "tentalis_seed")},
}


class Settings(BaseSettings):
    """Runtime configuration of every tentalis service, one section per component."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore",
                                      validate_default=True)

    tentalis_home: Path = Field(default_factory=default_home, description="State directory.")
    tentalis_store: Path | None = Field(
        default=None, description="SQLite experience ledger (default <home>/experience.db)."
    )
    tentalis_seed: int = Field(default=0, description="Seed for task suites and sampling.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the services."
    )

    bus: BusConfig = Field(default_factory=BusConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    manager: ManagerConfig = Field(default_factory=ManagerConfig)
    training: TrainConfig = Field(default_factory=TrainConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.tentalis_home = self.tentalis_home.expanduser()
        if self.tentalis_store is None:
            self.tentalis_store = self.tentalis_home / "experience.db"
        return self

    @model_validator(mode="after")
    def _link_sections(self) -> Settings:
        """Copy each linked field (:data:`LINKS`) from the section that owns it."""
        for section, links in LINKS.items():
            config = getattr(self, section)
            values = {f: self._value(*source) for f, source in links.items()}
            clash = [f for f, v in values.items()
                     if f in config.model_fields_set and getattr(config, f) != v]
            if clash:
                owners = ", ".join(f"{section}.{f} by {_name(*links[f])}" for f in clash)
                raise ValueError(f"set {owners}, not in the {section} section")
            setattr(self, section, config.model_copy(update=values))
        return self

    def _value(self, section: str, field: str) -> Any:
        return getattr(getattr(self, section) if section else self, field)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            FlatSource(settings_cls, init_settings(), strict=True),
            FlatSource(settings_cls, environment_values()),
            FlatSource(settings_cls, toml_values(config_file_path())),
        )

    if not TYPE_CHECKING:  # a flat name read as an attribute says where it lives now

        def __getattr__(self, name: str) -> Any:
            if name in VARIABLES and VARIABLES[name][0]:
                section, field = VARIABLES[name]
                raise AttributeError(f"Settings has no {name!r}: {name.upper()} is "
                                     f"settings.{section}.{field}")
            return super().__getattr__(name)

    # --- derived -----------------------------------------------------------------------
    @property
    def store_path(self) -> Path:
        assert self.tentalis_store is not None
        return self.tentalis_store

    def updated(self, **values: Any) -> Settings:
        """A copy with ``values`` applied (variable names in lower case, or sections, as
        :func:`load_settings` takes them), validated, linked fields derived again."""
        linked = {name: set(fields) for name, fields in LINKS.items()}
        data = self.model_dump(exclude=linked)  # type: ignore[arg-type]
        for name, value in nest(values, set(SECTIONS), strict=True).items():
            if name in SECTIONS and isinstance(value, dict):
                data[name] = {**data[name], **value}
            else:
                data[name] = value
        with _readable_errors():
            return type(self).model_validate(data)

    def to_toml_dict(self) -> dict[str, Any]:
        """The settings as written by ``tentalis init``: one table per section (secrets and
        linked fields left out; they come from their own variables)."""
        data: dict[str, Any] = {}
        for name, value in self.model_dump(mode="json").items():
            if isinstance(getattr(self, name), BaseModel):
                skip = SECRETS.get(name, set()) | set(LINKS.get(name, ()))
                value = {k: v for k, v in value.items() if k not in skip and v is not None}
            if value is not None:
                data[name] = value
        return data


def _name(section: str, field: str) -> str:
    """How a user sets ``section.field``: its variable, else its place in a TOML table."""
    return variable_of(section, field) or f"[{section}] {field}"


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    name = None
    if len(loc) >= 2:
        name = variable_of(loc[0], loc[1])
    elif len(loc) == 1:
        name = variable_of("", loc[0])
    field = name or ".".join(loc) or "settings"
    value = error.get("input")
    ctx = error.get("ctx") or {}
    allowed = ctx.get("expected")
    if isinstance(value, dict):  # a section's own check: the message says which field
        msg = f"{field.upper()}: {error.get('msg')}"
    else:
        msg = f"{field.upper()}={value!r} is invalid: {error.get('msg')}"
    if allowed:
        msg += f" (allowed: {allowed})"
    return msg


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation failures into a readable ConfigError.

    ``overrides`` are variable names in lower case (``nats_url=...``) or whole sections
    (``training={"learning_rate": 1e-4}``); None values are left out."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    with _readable_errors():
        return Settings(**clean)


@contextmanager
def _readable_errors() -> Iterator[None]:
    try:
        yield
    except KeyError as exc:
        raise ConfigError(f"unknown setting {exc.args[0]!r}") from None
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


SECTIONS = {name for name, field in Settings.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)}
