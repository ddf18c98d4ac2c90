"""Scoring profiles: named sets of component weights, stored as TOML data.

A profile file::

    name = "terminal"
    description = "Leans on execution success."
    [weights]          # component name -> weight (>= 0, positive sum; normalised on use)
    verifier = 0.75
    judge = 0.15
    format = 0.1
    [why]              # optional: one line per component, shown by `tentalis rewards profiles`
    verifier = "Execution success is ground truth."

``load_profile(ref)`` finds ``ref`` as, in order: a path to a ``.toml`` file;
``$TENTALIS_HOME/profiles/<ref>.toml`` (a user's own profile, or an override of a shipped
one — no code needed); the profiles shipped in ``tentalis/rewards/profiles/`` (math, chat,
terminal, swe, gui, default).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tentalis.config import default_home
from tentalis.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """Component weights (as written; the scorer normalises them) and why each is there."""

    name: str
    weights: dict[str, float]
    description: str = ""
    why: dict[str, str] = field(default_factory=dict)
    source: str = ""


def user_profile_dir(home: Path | None = None) -> Path:
    """Where a user's profiles live: ``$TENTALIS_HOME/profiles``."""
    return (home or default_home()) / "profiles"


def parse_profile(data: dict[str, Any], source: str, default_name: str = "") -> Profile:
    """Validate a profile's TOML table; a ConfigError names the file and the problem."""
    weights = data.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ConfigError(f"profile {source}: needs a [weights] table naming components")
    clean: dict[str, float] = {}
    for comp, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
            raise ConfigError(f"profile {source}: weight of {comp!r} must be a number >= 0")
        clean[str(comp)] = float(w)
    if sum(clean.values()) <= 0:
        raise ConfigError(f"profile {source}: weights must have a positive sum")
    why = data.get("why", {})
    if not isinstance(why, dict):
        raise ConfigError(f"profile {source}: [why] must be a table of strings")
    return Profile(
        name=str(data.get("name") or default_name),
        weights=clean,
        description=str(data.get("description", "")),
        why={str(k): str(v) for k, v in why.items()},
        source=source,
    )


def _read(text: str, source: str, default_name: str) -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {source} is not valid TOML: {exc}") from None
    return parse_profile(data, source, default_name)


def shipped_profiles() -> list[str]:
    """Names of the profiles that come with tentalis."""
    root = resources.files("tentalis.rewards") / "profiles"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def available_profiles(home: Path | None = None) -> list[str]:
    """Shipped profiles and the user's, by name."""
    user = user_profile_dir(home)
    mine = [p.stem for p in user.glob("*.toml")] if user.is_dir() else []
    return sorted({*shipped_profiles(), *mine})


def load_profile(ref: str | Path, home: Path | None = None) -> Profile:
    """The profile ``ref`` names (see the module docstring for where it is looked for)."""
    ref_s = str(ref)
    if ref_s.endswith(".toml") or "/" in ref_s or isinstance(ref, Path):
        path = Path(ref_s).expanduser()
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist")
        return _read(path.read_text(encoding="utf-8"), str(path), path.stem)
    user = user_profile_dir(home) / f"{ref_s}.toml"
    if user.is_file():
        return _read(user.read_text(encoding="utf-8"), str(user), ref_s)
    shipped = resources.files("tentalis.rewards") / "profiles" / f"{ref_s}.toml"
    if shipped.is_file():
        return _read(shipped.read_text(encoding="utf-8"), f"tentalis:{ref_s}", ref_s)
    raise ConfigError(
        f"no scoring profile {ref_s!r}; known: {available_profiles(home)} "
        f"(add one as {user_profile_dir(home)}/{ref_s}.toml)"
    )


def has_profile(name: str, home: Path | None = None) -> bool:
    return name in available_profiles(home)
