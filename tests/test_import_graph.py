"""The layering holds: which package may import which (docs/architecture.md), checked
on every import statement under src/tentalis — module-level and inside functions, relative
imports resolved — and no registry is filled as a side effect of an import."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import tentalis

SRC = Path(tentalis.__file__).resolve().parent

# The layers of docs/architecture.md, bottom first: a package may import its own layer and
# the layers below it, never one above. A new top-level package must be placed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("config", "events", "durable"),
    ("models", "bus", "sandbox"),
    ("inference", "store"),
    ("steps",),
    ("rewards",),
    ("envs",),
    ("agents",),
    ("training",),
    ("gateway",),
    ("services",),
    ("demo",),
    ("cli", "__main__"),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}

# Pairs the layer order allows but the design does not: the gateway serves any backend and
# is wired by services/, so it reads no settings and knows no agents.
FORBIDDEN = (
    ("gateway", "agents"),
    ("gateway", "training"),
    ("gateway", "config"),
)


def _module_name(root: Path, path: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import in ``path``, relative ones resolved against
    the package ``root`` stands for (``tentalis``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ["tentalis", *_module_name(root, path)]
    if path.name != "__init__.py":
        package = package[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # "from tentalis import agents" imports the package tentalis.agents
            out.append((node.lineno, target))
            out += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return out


def violations(root: Path) -> list[str]:
    """``file:line: <importer> imports <imported>`` for every forbidden import under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = _module_name(root, path)
        if not rel:
            continue
        for line, name in imported_modules(root, path):
            parts = name.split(".")
            if parts[0] != "tentalis" or len(parts) < 2:
                continue
            importer, imported = rel[0], parts[1]
            if importer == imported:
                continue
            if importer not in RANK or imported not in RANK:
                unplaced = importer if importer not in RANK else imported
                found.append(f"{path}:{line}: package {unplaced!r} has no layer in LAYERS")
            elif RANK[imported] > RANK[importer] or (importer, imported) in FORBIDDEN:
                found.append(f"{path}:{line}: {importer} imports {name}")
    return sorted(set(found))


def test_no_package_imports_one_it_may_not() -> None:
    found = violations(SRC)
    assert not found, "\n".join(found)


def test_a_planted_violation_is_found_with_its_file_and_line(tmp_path: Path) -> None:
    pkg = tmp_path / "tentalis"
    (pkg / "rewards").mkdir(parents=True)
    (pkg / "steps").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "rewards" / "__init__.py").write_text("")
    (pkg / "rewards" / "planted.py").write_text(textwrap.dedent("""\
        import json

        def late():
            from ..agents import worker
        """))
    (pkg / "steps" / "__init__.py").write_text("from tentalis import envs\n")
    (pkg / "gateway").mkdir()
    (pkg / "gateway" / "__init__.py").write_text("import tentalis.config\n")
    (pkg / "newpkg").mkdir()
    (pkg / "newpkg" / "__init__.py").write_text("from tentalis.events import TaskEvent\n")
    (pkg / "envs").mkdir()
    (pkg / "envs" / "__init__.py").write_text("from tentalis.rewards import registry\n")
    found = violations(pkg)
    assert f"{pkg / 'rewards' / 'planted.py'}:4: rewards imports tentalis.agents" in found
    assert f"{pkg / 'steps' / '__init__.py'}:1: steps imports tentalis.envs" in found
    assert f"{pkg / 'gateway' / '__init__.py'}:1: gateway imports tentalis.config" in found
    assert (f"{pkg / 'newpkg' / '__init__.py'}:1: package 'newpkg' has no layer in LAYERS"
            in found)
    assert not [f for f in found if str(pkg / "envs") in f]  # envs may import rewards


def test_importing_every_module_registers_nothing_until_load_environments() -> None:
    code = textwrap.dedent("""\
        import importlib, pkgutil
        import tentalis
        for m in pkgutil.walk_packages(tentalis.__path__, "tentalis."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
        from tentalis.envs import environment_names, get_environment, load_environments
        from tentalis.errors import ScoringError
        from tentalis.rewards.registry import _GENERIC, scored_environments, scorer_for
        assert environment_names() == [] and scored_environments() == [] and not _GENERIC, (
            environment_names(), scored_environments(), sorted(_GENERIC))
        try:
            get_environment("math")
        except KeyError as exc:
            assert "load_environments" in str(exc), exc
        else:
            raise AssertionError("an environment was found before load_environments()")
        try:
            scorer_for("math")
        except ScoringError as exc:
            assert "load_environments" in str(exc), exc
        else:
            raise AssertionError("a scorer was found before load_environments()")
        assert load_environments() == ["gui", "math", "swe", "terminal"], environment_names()
        assert scored_environments() == ["gui", "math", "swe", "terminal"]
        assert sorted(_GENERIC) == ["combined", "judge"]
        print("ok")
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=_env())
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), *sys.path])}
