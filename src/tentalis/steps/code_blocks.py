"""Read code, files, commands and actions out of what a worker wrote, without raising.

Formats (each documented in its environment's system prompt):

* fenced code: a Markdown fence with an optional language (three backticks ``python``),
  an unclosed last fence running to the end;
* whole files: ``<file path="pkg/mod.py">…</file>`` (single or double quotes, or none);
  a fenced block inside the tags is unwrapped;
* tagged items: ``<cmd>…</cmd>`` (terminal) and ``<action>…</action>`` (gui), in order.
"""

from __future__ import annotations

import re

from tentalis.steps.parsing import find_step_blocks

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_FILE = re.compile(
    r"<\s*file\s+path\s*=\s*(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\s>]+))\s*>(.*?)"
    r"(?:<\s*/\s*file\s*>|\Z)",
    re.DOTALL | re.IGNORECASE,
)
MAX_CODE_CHARS = 100_000


def fenced_blocks(text: str | None) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block, in order."""
    if not text:
        return []
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def last_code_block(
    text: str | None, languages: tuple[str, ...] = ("python", "py", "")
) -> str | None:
    """The last fenced block in one of ``languages`` (``""``: no language given)."""
    blocks = [code for lang, code in fenced_blocks(text) if lang in languages]
    return blocks[-1][:MAX_CODE_CHARS] if blocks else None


def _unwrap(body: str) -> str:
    inner = fenced_blocks(body)
    if inner and body.strip().startswith("```"):
        return inner[0][1]
    return body.strip("\n") + "\n"


def file_blocks(text: str | None) -> dict[str, str]:
    """``{path: content}`` for every ``<file path=…>`` block; a later block for the same
    path wins. Paths are stripped of whitespace and a leading ``./``."""
    if not text:
        return {}
    files: dict[str, str] = {}
    for m in _FILE.finditer(text):
        path = (m.group(1) or m.group(2) or m.group(3) or "").strip().removeprefix("./")
        if path:
            files[path] = _unwrap(m.group(4))[:MAX_CODE_CHARS]
    return files


def tagged(text: str | None, tag: str) -> list[str]:
    """The stripped contents of every ``<tag>…</tag>`` in ``text`` (an unclosed one runs
    to the end of its line)."""
    if not text:
        return []
    pattern = re.compile(
        rf"<\s*{tag}\s*>(.*?)(?:<\s*/\s*{tag}\s*>|(?=<\s*{tag}\s*>)|$)",
        re.DOTALL | re.IGNORECASE | re.MULTILINE,
    )
    return [m.group(1).strip() for m in pattern.finditer(text) if m.group(1).strip()]


def raw_steps(raw_text: str | None, steps: list[str]) -> list[str]:
    """``steps`` as written, whitespace and newlines kept (the parser collapses them, which
    breaks code): the non-empty ``<step>`` blocks of ``raw_text`` when they line up one to
    one with ``steps``, else ``steps`` unchanged."""
    blocks = [b.text for b in find_step_blocks(raw_text or "") if b.text.strip()]
    return blocks if len(blocks) == len(steps) else list(steps)
