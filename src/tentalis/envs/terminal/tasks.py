"""The ``terminal`` environment: shell tasks over a small seeded working directory.

The worker answers in one go (it does not see command output), so a task is solved by
commands whose *effect* is right: either the output of the last command states the answer
(``check.kind == "output"``), or a file ends up with the right content
(``check.kind == "file"``). Commands run in a sandbox (:mod:`tentalis.sandbox`) over the
task's ``metadata["files"]``; :class:`tentalis.envs.terminal.verifier.TerminalVerifier` scores.

Task kinds: count matching log lines, sum a CSV column, count files by extension, find the
file holding a token, create a directory with a file, sort a file into another.
"""

from __future__ import annotations

import random
import shlex
from typing import ClassVar

from tentalis.envs.base import Drawn, SuiteEnvironment, TaskSpec

TERMINAL_SYSTEM_PROMPT = (
    "You work in a Linux shell (POSIX sh) inside a directory that holds the files named in "
    "the task. There is no network. Solve the task step by step. Write each step inside "
    "<step> and </step> tags and put the one shell command that step runs inside <cmd> and "
    "</cmd> tags in the step. Commands run in order in the same directory; files persist "
    "between commands, but `cd` and variables do not. You will not see any output: when the "
    "task asks a question, the output of your last command is your answer.\n"
    "Example:\n"
    "<step>Count the lines of notes.txt. <cmd>wc -l < notes.txt</cmd></step>"
)

# fmt: off
WORDS = ("apple", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo",
         "juniper", "kelp", "lumen", "maple", "nectar", "onyx", "pepper", "quartz", "raven")
LEVELS = ("INFO", "WARN", "ERROR", "DEBUG")
# fmt: on


def _log(rng: random.Random) -> Drawn:
    level = rng.choice(("ERROR", "WARN"))
    lines = [f"2024-05-{d:02d} {lvl} {rng.choice(WORDS)} request {rng.randint(1, 999)}"
             for d in range(1, rng.randint(8, 20))
             for lvl in [level if d == 1 else rng.choice(LEVELS)]]  # fmt: skip
    rng.shuffle(lines)
    count = sum(f" {level} " in line for line in lines)
    return Drawn(
        key=f"count_log:{level}:{'|'.join(lines)}",
        prompt=f"The file app.log holds one log entry per line. How many lines of app.log "
        f"have the level {level}?",
        answer=str(count),
        metadata={"kind": "count_log", "files": {"app.log": "\n".join(lines) + "\n"},
                  "check": {"kind": "output"},
                  "reference": [f"grep -c ' {level} ' app.log"]},
    )  # fmt: skip


def _csv_sum(rng: random.Random) -> Drawn:
    rows = [(w, rng.randint(1, 40)) for w in rng.sample(WORDS, rng.randint(3, 7))]
    text = "item,qty\n" + "".join(f"{w},{q}\n" for w, q in rows)
    return Drawn(
        key=f"csv_sum:{text}",
        prompt="The file stock.csv has a header line `item,qty` and then one item per line. "
        "What is the total of the qty column?",
        answer=str(sum(q for _, q in rows)),
        metadata={"kind": "csv_sum", "files": {"stock.csv": text}, "check": {"kind": "output"},
                  "reference": ["awk -F, 'NR > 1 { s += $2 } END { print s }' stock.csv"]},
    )  # fmt: skip


def _count_ext(rng: random.Random) -> Drawn:
    ext = rng.choice(("py", "md", "txt"))
    files = {f"src/{d}{w}.{rng.choice(('py', 'md', 'txt'))}": f"# {w}\n"
             for w in rng.sample(WORDS, rng.randint(4, 9))
             for d in [rng.choice(("", "lib/", "lib/sub/"))]}  # fmt: skip
    count = sum(p.endswith(f".{ext}") for p in files)
    return Drawn(
        key=f"count_ext:{ext}:{sorted(files)}",
        prompt=f"How many files ending in .{ext} are there under the directory src/, "
        "subdirectories included?",
        answer=str(count),
        metadata={"kind": "count_ext", "files": files, "check": {"kind": "output"},
                  "reference": [f"find src -type f -name '*.{ext}' | wc -l"]},
    )  # fmt: skip


def _find_token(rng: random.Random) -> Drawn:
    names = rng.sample(WORDS, rng.randint(3, 6))
    token = f"KEY-{rng.randint(1000, 9999)}"
    holder = rng.choice(names)
    files = {f"notes/{n}.txt": f"note about {n}\n" + (f"secret {token}\n" if n == holder else "")
             for n in names}  # fmt: skip
    return Drawn(
        key=f"find_token:{token}:{holder}:{sorted(names)}",
        prompt=f"Exactly one file in the directory notes/ contains the text {token}. Print "
        "that file's path.",
        answer=f"notes/{holder}.txt",
        metadata={"kind": "find_token", "files": files, "check": {"kind": "output"},
                  "reference": [f"grep -l '{token}' notes/*.txt"]},
    )  # fmt: skip


def _make_file(rng: random.Random) -> Drawn:
    directory, name = rng.choice(WORDS), rng.choice(WORDS) + ".txt"
    content = f"{rng.choice(WORDS)} {rng.randint(10, 99)} {rng.choice(WORDS)}"
    path = f"{directory}/{name}"
    return Drawn(
        key=f"make_file:{path}:{content}",
        prompt=f"Create a directory named {directory} and in it a file named {name} whose "
        f"only line is: {content}",
        answer=f"{path}: {content}",
        metadata={"kind": "make_file", "files": {"README": "workspace\n"},
                  "check": {"kind": "file", "path": path, "content": content + "\n"},
                  "reference": [f"mkdir -p {directory}",
                                f"printf '%s\\n' {shlex.quote(content)} > {path}"]},
    )  # fmt: skip


def _sort_file(rng: random.Random) -> Drawn:
    words = rng.sample(WORDS, rng.randint(4, 8))
    expected = "".join(w + "\n" for w in sorted(words))
    return Drawn(
        key=f"sort_file:{'|'.join(words)}",
        prompt="The file words.txt has one word per line. Write its lines in alphabetical "
        "order to a new file sorted.txt (leave words.txt as it is).",
        answer=expected.strip().replace("\n", " "),
        metadata={"kind": "sort_file", "files": {"words.txt": "".join(w + "\n" for w in words)},
                  "check": {"kind": "file", "path": "sorted.txt", "content": expected},
                  "reference": ["sort words.txt > sorted.txt"]},
    )  # fmt: skip


BUILDERS = (_log, _csv_sum, _count_ext, _find_token, _make_file, _sort_file)


class TerminalTasks(SuiteEnvironment):
    """Seeded shell tasks; see the module docstring."""

    name: ClassVar[str] = "terminal"
    builders = BUILDERS
    system_prompt = TERMINAL_SYSTEM_PROMPT


    @staticmethod
    def reference_solution(spec: TaskSpec) -> str:
        """A hand-written correct answer in the worker's format (the suite's proof of
        solvability; see the tests)."""
        return "\n".join(f"<step>Run it. <cmd>{c}</cmd></step>"
                         for c in spec.metadata["reference"])  # fmt: skip
