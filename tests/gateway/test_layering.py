"""The gateway builds on the layers below it only: no agents, no settings, no services."""

from __future__ import annotations

import ast
from pathlib import Path

import tentalis.gateway

FORBIDDEN = ("tentalis.agents", "tentalis.config", "tentalis.services", "tentalis.cli")


def test_gateway_imports_no_agents_settings_or_services() -> None:
    root = Path(tentalis.gateway.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(root)}: {n}" for n in names
                      if n.startswith(FORBIDDEN)]
    assert found == []
