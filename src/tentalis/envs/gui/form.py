"""A deterministic text GUI: a form with text fields, drop-downs, check boxes and buttons.

Actions (one per ``<action>`` tag; names and options are case-insensitive):

* ``click <id>`` — a field or drop-down takes the focus; a check box toggles; the
  ``submit`` button submits, ``cancel`` clears the form;
* ``type <id> <value>`` — set a text field (value may be quoted); ``type <value>`` types
  into the focused field;
* ``select <id> <option>`` — choose a drop-down option;
* ``submit`` — the same as ``click submit``.

Submitting checks that required fields are filled; a form that fails shows an error and
stays open. After a successful submit the form is closed and every action is invalid.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Literal

FieldKind = Literal["text", "select", "checkbox"]


@dataclass(frozen=True)
class FormField:
    id: str
    label: str
    kind: FieldKind = "text"
    options: tuple[str, ...] = ()
    required: bool = True


@dataclass
class FormState:
    """A live form: values, focus, and whether it was submitted."""

    title: str
    fields: tuple[FormField, ...]
    values: dict[str, str | bool] = field(default_factory=dict)
    focus: str | None = None
    submitted: bool = False
    error: str | None = None

    def __post_init__(self) -> None:
        for f in self.fields:
            self.values.setdefault(f.id, False if f.kind == "checkbox" else
                                   (f.options[0] if f.kind == "select" else ""))  # fmt: skip

    def _field(self, name: str) -> FormField | None:
        key = name.strip().lower()
        return next((f for f in self.fields if key in (f.id, f.label.lower())), None)

    def apply(self, action: str) -> str | None:
        """Apply one action; None when valid, else why it is not (the state is unchanged)."""
        if self.submitted:
            return "the form is already submitted"
        try:
            words = shlex.split(action)
        except ValueError:
            words = action.split()
        if not words:
            return "empty action"
        verb, args = words[0].lower(), words[1:]
        if verb == "submit" and not args:
            return self._submit()
        if verb == "click" and len(args) == 1:
            return self._click(args[0])
        if verb == "type" and args:
            f = self._field(args[0]) if len(args) >= 2 else None
            target = f or (self._field(self.focus) if self.focus else None)
            value = " ".join(args[1:] if f else args)
            if target is None or target.kind != "text":
                return f"no text field to type into: {action!r}"
            self.values[target.id], self.focus = value, target.id
            return None
        if verb == "select" and len(args) >= 2:
            f, choice = self._field(args[0]), " ".join(args[1:]).lower()
            if f is None or f.kind != "select":
                return f"no drop-down {args[0]!r}"
            match = next((o for o in f.options if o.lower() == choice), None)
            if match is None:
                return f"{f.id} has no option {choice!r}"
            self.values[f.id] = match
            return None
        return f"unknown action {action!r}"

    def _click(self, name: str) -> str | None:
        key = name.lower().strip("[]() ")
        if key == "submit":
            return self._submit()
        if key == "cancel":
            self.values, self.focus, self.error = {}, None, None
            self.__post_init__()
            return None
        f = self._field(key)
        if f is None:
            return f"nothing called {name!r} on the screen"
        if f.kind == "checkbox":
            self.values[f.id] = not self.values[f.id]
        self.focus = f.id
        return None

    def _submit(self) -> str | None:
        empty = [f for f in self.fields if f.kind == "text" and not str(self.values[f.id]).strip()]
        missing = [f.label for f in empty if f.required]
        if missing:
            self.error = f"Please fill in: {', '.join(missing)}"
            return None  # a valid action with a visible error, as a real form would do
        self.submitted, self.error = True, None
        return None

    def render(self) -> str:
        """The screen as text."""
        lines = [f"== {self.title} =="]
        for f in self.fields:
            v = self.values[f.id]
            if f.kind == "checkbox":
                lines.append(f"[{'x' if v else ' '}] {f.label}   (id: {f.id})")
            elif f.kind == "select":
                lines.append(f"{f.label}: <{v}>  options: {' | '.join(f.options)}   (id: {f.id})")
            else:
                lines.append(f"{f.label}: [{v}]   (id: {f.id})")
        if self.error:
            lines.append(f"! {self.error}")
        lines.append("[ Submit ]  [ Cancel ]" if not self.submitted else "Submitted. Thank you!")
        return "\n".join(lines)
