"""Steps scored per second by the local step judge: m = 1 and m = 3, batched vs one call per step.

The judge is the real SmolLM2-135M-Instruct (``LocalInference``). The results it judges
are fixed two-step solutions to held-out math tasks (half of them with a wrong sum), so
every mode judges the same items: ``steps`` steps plus one final answer per result.
*Batched* sends every step × vote of all results in one ``chat`` call (decoded in batches
of ``--max-batch``); *per step* sends one request per call, one after another. Retries are
off (``max_retries=0``) so both modes do exactly the same requests; malformed replies are
counted. A warm-up call runs first.

    python benchmarks/judge_throughput.py [--results 6] [--max-batch 16] [--device cpu]
        [--threads 1]

The results file (JSON, with the command and machine) goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

from tentalis.envs import get_environment, load_environments
from tentalis.events import ResultEvent
from tentalis.inference.base import ChatRequest
from tentalis.inference.local import LocalInference
from tentalis.models import SMOLLM2_ALIAS, ModelStore
from tentalis.rewards.judge import JudgeConfig, JudgeScorer
from tentalis.steps.parsing import parse_steps


def fixed_results(n: int, seed: int) -> list[ResultEvent]:
    """``n`` two-step answers to held-out addition tasks; every other one adds wrongly."""
    load_environments()
    out = []
    for i, spec in enumerate(get_environment("math").generate(n, split="heldout", seed=seed,
                                                              level="addition")):
        a, b = spec.metadata["operands"][:2]
        total = int(spec.answer) + (0 if i % 2 == 0 else 3)
        text = (f"<step>We add {a} and {b}.</step>\n<step>{a} + {b} = {total}</step>\n"
                f"Answer: {total}")
        task = spec.to_task_event()
        p = parse_steps(text)
        out.append(ResultEvent(task_id=task.task_id, task=task, worker_id="bench", raw_text=text,
                               steps=p.steps, final_answer=p.final_answer))
    return out


async def run_mode(llm: LocalInference, results: list[ResultEvent], votes: int,
                   batched: bool) -> dict:
    config = JudgeConfig(votes=votes, max_retries=0,
                         max_requests_per_call=None if batched else 1)
    judge = JudgeScorer(llm, config)
    t0 = time.perf_counter()
    scores = await judge.score_batch([(r.task, r) for r in results])
    wall = time.perf_counter() - t0
    steps = sum(len(r.steps) for r in results)
    requests = sum(s.details["cost"]["requests"] for s in scores)
    return {
        "votes": votes,
        "mode": "batched" if batched else "one call per step",
        "results": len(results),
        "steps": steps,
        "requests": requests,
        "malformed": sum(s.details["malformed"] for s in scores),
        "wall_s": round(wall, 2),
        "steps_per_s": round(steps / wall, 3),
        "requests_per_s": round(requests / wall, 3),
        "completion_tokens": sum(s.details["cost"]["completion_tokens"] for s in scores),
    }


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=6, help="Results judged (2 steps each).")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a small, busy CPU; 0 = torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    home = os.environ.get("TENTALIS_HOME") or Path.home() / ".cache" / "tentalis-test"
    llm = LocalInference(ModelStore(home).resolve(SMOLLM2_ALIAS), device=args.device,
                         max_batch=args.max_batch, model_name=SMOLLM2_ALIAS,
                         num_threads=args.threads or None)
    results = fixed_results(args.results, args.seed)
    rows = []
    try:
        await llm.chat([ChatRequest([{"role": "user", "content": "Hi"}], max_tokens=4)])
        for votes in (1, 3):
            for batched in (True, False):
                row = await run_mode(llm, results, votes, batched)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        await llm.close()
    speedup = {
        f"m={v}": round(next(r["steps_per_s"] for r in rows if r["votes"] == v
                             and r["mode"] == "batched")
                        / next(r["steps_per_s"] for r in rows if r["votes"] == v
                               and r["mode"] != "batched"), 2)
        for v in (1, 3)
    }
    print(f"batching speed-up (steps/s batched ÷ one call per step): {speedup}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "judge_throughput.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "device": str(llm.device),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": SMOLLM2_ALIAS,
        "judge": {"max_tokens": JudgeConfig().max_tokens, "max_batch": args.max_batch,
                  "max_retries": 0, "torch_threads": args.threads or "default"},
        "results": rows,
        "batching_speedup": speedup,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
