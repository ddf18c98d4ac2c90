"""The ``gui`` environment: fill in and submit a text-rendered form.

The prompt shows the screen (:meth:`FormState.render`) and what to enter; the worker
answers with steps holding ``<action>`` tags (see :mod:`.form` for the actions).
:class:`tentalis.envs.gui.verifier.GuiVerifier` replays the actions on a fresh form; the final
state decides: submitted, with every field equal to the target values.
"""

from __future__ import annotations

import random
from typing import ClassVar

from tentalis.envs.base import Builder, Drawn, SuiteEnvironment, TaskSpec
from tentalis.envs.gui.form import FormField, FormState

GUI_SYSTEM_PROMPT = (
    "You operate a form on a text screen. Each element shows its id. Work step by step: "
    "write each step inside <step> and </step> tags with one action inside <action> and "
    "</action> tags. Actions: click <id> (focus a field, toggle a check box, press a "
    "button), type <id> \"<text>\", select <id> <option>, submit.\n"
    "Example:\n"
    '<step>Enter the city. <action>type city "Oslo"</action></step>\n'
    "<step>Send the form. <action>submit</action></step>"
)

# fmt: off
FIRST = ("Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Radia")
LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie")
CITIES = ("Oslo", "Lima", "Quito", "Accra", "Hanoi", "Porto", "Perth", "Tunis")
# fmt: on

FORMS: dict[str, tuple[str, tuple[FormField, ...]]] = {
    "signup": ("Create account", (
        FormField("name", "Full name"), FormField("email", "Email"),
        FormField("plan", "Plan", "select", ("Free", "Pro", "Team")),
        FormField("newsletter", "Send me the newsletter", "checkbox", required=False),
    )),
    "shipping": ("Shipping address", (
        FormField("name", "Name"), FormField("street", "Street"), FormField("city", "City"),
        FormField("zip", "Postcode"),
        FormField("speed", "Delivery", "select", ("Standard", "Express")),
    )),
    "settings": ("Settings", (
        FormField("display", "Display name"),
        FormField("theme", "Theme", "select", ("Light", "Dark", "System")),
        FormField("alerts", "Email alerts", "checkbox", required=False),
        FormField("beta", "Join beta", "checkbox", required=False),
    )),
}  # fmt: skip


def _targets(form: str, rng: random.Random) -> dict[str, str | bool]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if form == "signup":
        return {"name": f"{first} {last}", "email": f"{first.lower()}@{last.lower()}.org",
                "plan": rng.choice(("Free", "Pro", "Team")), "newsletter": rng.random() < 0.5}
    if form == "shipping":
        return {"name": f"{first} {last}", "street": f"{rng.randint(1, 99)} {last} Road",
                "city": rng.choice(CITIES), "zip": str(rng.randint(10000, 99999)),
                "speed": rng.choice(("Standard", "Express"))}
    return {"display": f"{first}{rng.randint(1, 99)}",
            "theme": rng.choice(("Light", "Dark", "System")),
            "alerts": rng.random() < 0.5, "beta": rng.random() < 0.5}  # fmt: skip


def _describe(fields: tuple[FormField, ...], target: dict[str, str | bool]) -> str:
    parts = []
    for f in fields:
        v = target[f.id]
        if f.kind == "checkbox":
            parts.append(f"{f.label}: {'checked' if v else 'unchecked'}")
        else:
            parts.append(f"{f.label}: {v}")
    return "; ".join(parts)


def _builder(form: str) -> Builder:
    def build(rng: random.Random) -> Drawn:
        title, fields = FORMS[form]
        target = _targets(form, rng)
        screen = FormState(title, fields).render()
        return Drawn(
            key=f"{form}:{sorted(target.items())}",
            prompt=f"Screen:\n{screen}\n\nFill in the form with {_describe(fields, target)}. "
            "Then submit it.",
            answer=_describe(fields, target),
            metadata={"form": form, "target": target},
        )

    return build


def form_for(name: str) -> FormState:
    """A fresh form of the kind ``name``; KeyError names the known forms."""
    if name not in FORMS:
        raise KeyError(f"unknown form {name!r}; known: {sorted(FORMS)}")
    title, fields = FORMS[name]
    return FormState(title, fields)


BUILDERS = tuple(_builder(f) for f in FORMS)


class GuiTasks(SuiteEnvironment):
    """Seeded form-filling tasks; see the module docstring."""

    name: ClassVar[str] = "gui"
    builders = BUILDERS
    system_prompt = GUI_SYSTEM_PROMPT


    @staticmethod
    def reference_solution(spec: TaskSpec) -> str:
        """A hand-written correct answer in the worker's format."""
        _, fields = FORMS[spec.metadata["form"]]
        steps = []
        for f in fields:
            v = spec.metadata["target"][f.id]
            if f.kind == "text":
                steps.append(f'type {f.id} "{v}"')
            elif f.kind == "select":
                steps.append(f"select {f.id} {v}")
            elif v:
                steps.append(f"click {f.id}")
        steps.append("submit")
        return "\n".join(f"<step><action>{a}</action></step>" for a in steps)
