"""Write a calibration run down: ``report.md``, ``reliability.png``, ``pairs.json``.

Every file carries its provenance (the command, seed, worker and judge models, time), and
every figure in it is computed from the run's pairs.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tentalis.rewards.calibrate import CalibrationData
from tentalis.rewards.calibration import Agreement


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def summary_lines(data: CalibrationData) -> list[str]:
    """The headline figures, one line each (printed by the CLI, written in the report)."""
    lines = []
    for label, a in (("steps", data.steps), ("outcome", data.outcomes)):
        lines.append(
            f"{label:8s} n={a.n:4d} (verifier positive {a.positives:4d})  "
            f"agreement={_f(a.accuracy)}  spearman={_f(a.spearman)}  ECE={_f(a.ece)}"
        )
    lines.append(
        f"judge replies parsed {data.judgements - data.malformed}/{data.judgements} "
        f"({100 * data.parse_rate:.1f}%), items without a verdict {data.unjudged}, "
        f"judge time {data.judge_seconds:.1f} s"
    )
    return lines


def _table(a: Agreement) -> list[str]:
    rows = ["| bin | n | mean judge score | verifier positive rate |", "|---|---|---|---|"]
    for b in a.bins:
        rows.append(f"| [{b.lo:.1f}, {b.hi:.1f}{']' if b.hi >= 1 else ')'} | {b.count} | "
                    f"{_f(b.mean_score)} | {_f(b.frac_positive)} |")
    return rows


def markdown(data: CalibrationData, meta: dict[str, Any]) -> str:
    out = [
        "# Judge calibration against the verifier",
        "",
        f"Made by `{meta['command']}` at {meta['created']} "
        f"(seed {meta['seed']}; answers by {meta['worker_model']}; "
        f"judge `{meta['judge_model']}`, {meta['votes']} vote(s), {meta['aggregate']}).",
        "",
        f"{data.results} results on {meta['tasks']} tasks ({meta['source']}); "
        f"{data.steps_total} steps, of which {data.steps.n} make an arithmetic claim the "
        f"verifier can check; {data.no_answer} results have no final answer "
        "(left out of the outcome rows).",
        "",
        "```",
        *summary_lines(data),
        "```",
        "",
        "Agreement: share where `judge score >= 0.5` equals the verifier's label. "
        "Spearman ρ: rank correlation of judge score and label (n/a when either is "
        "constant). ECE: Σ over deciles of (bin share) × |positive rate − mean score|.",
    ]
    for label, a in (("Steps", data.steps), ("Outcomes", data.outcomes)):
        out += ["", f"## {label}: reliability by decile", "", *_table(a)]
    out += ["", "![reliability diagram](reliability.png)", ""]
    return "\n".join(out)


def plot(data: CalibrationData, meta: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, (label, a) in zip(axes, (("steps", data.steps), ("outcome", data.outcomes)),
                              strict=True):
        full = [b for b in a.bins if b.count]
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.bar([b.lo + 0.05 for b in full], [b.frac_positive for b in full], width=0.09,
               alpha=0.7, label="verifier positive rate")
        ax.plot([b.mean_score for b in full], [b.frac_positive for b in full], "o-",
                color="C1", label="at mean judge score")
        for b in full:
            ax.annotate(str(b.count), (b.lo + 0.05, b.frac_positive), ha="center",
                        va="bottom", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="judge score (decile)",
               ylabel="fraction the verifier marks correct",
               title=f"{label}: n={a.n}, acc={_f(a.accuracy, 2)}, "
                     f"ρ={_f(a.spearman, 2)}, ECE={_f(a.ece, 2)}")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"judge {meta['judge_model']} ({meta['votes']} vote(s)) vs verifier", fontsize=10)
    fig.text(0.01, 0.01, f"{meta['command']} · seed {meta['seed']} · {meta['created']}",
             fontsize=6, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110, metadata={"Description": json.dumps(meta)})
    plt.close(fig)


def write_report(out_dir: Path, data: CalibrationData, meta: dict[str, Any]) -> list[Path]:
    """Write the report files into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png, pairs = out_dir / "report.md", out_dir / "reliability.png", out_dir / "pairs.json"
    md.write_text(markdown(data, meta), encoding="utf-8")
    plot(data, meta, png)
    metrics = {k: {f: _finite(v) for f, v in asdict(a).items() if f != "bins"}
               for k, a in (("steps", data.steps), ("outcome", data.outcomes))}
    pairs.write_text(json.dumps({
        "made_by": meta, "metrics": metrics, "parse_rate": data.parse_rate,
        "judgements": data.judgements, "malformed": data.malformed,
        "step_pairs": list(zip(data.step_scores, data.step_labels, strict=True)),
        "outcome_pairs": list(zip(data.outcome_scores, data.outcome_labels, strict=True)),
        "rows": data.rows,
    }, indent=1, default=str), encoding="utf-8")
    return [md, png, pairs]
