"""tentalis' GRPO/DAPO engine vs TRL's GRPOTrainer: same model, prompts, algorithm, one run.

Both engines train SmolLM2-135M-Instruct with LoRA (same rank, α, target modules) on the
same training prompts of the math suite (two-number addition), with the same algorithm:
DAPO loss (token-level), clip 0.2 / 0.28, β = 0, G completions per prompt sampled at the
same temperature, the same completion cap, truncated completions masked, group-scaled
advantages, AdamW at the same constant learning rate, grad-norm clip 1.0. The reward is the
same code on both sides: tentalis' lenient math scorer on the completion text.

One step, end to end, is: sample P × G completions → score → one optimiser update →
the new weights are live for the next sampling. For tentalis that means its own inference
engine (``LocalInference``) generates, ``PolicyTrainer`` trains, and the adapter is saved
and hot-swapped into the inference engine (the architecture's real cost: trainer and
workers hold separate model copies). TRL generates with ``model.generate`` on the policy
it trains. tentalis' dynamic sampling is switched off so both engines train on the same
batches (it only skips groups whose advantages are all zero).

Both hold the base weights in the same precision (``--dtype``; ``auto`` = bf16 where the
CPU multiplies it natively, as tentalis picks by default): tentalis through its own
``dtype`` settings, TRL with the model loaded in that dtype and ``bf16=True`` (autocast).

Each engine runs in its own subprocess (peak RSS is per engine), one after the other::

    python benchmarks/grpo_vs_trl.py [--steps 8] [--prompts 4] [--group 4] [--max-new-tokens 64]
                                     [--dtype auto|float32|bfloat16]

Reported per engine: median seconds per step (the first step, which warms up, excluded),
completion tokens per second of step time, peak RSS, reward mean of the first and last
steps; and the ratios tentalis / TRL. Results go to benchmarks/results/grpo_vs_trl.json
with the command, versions and machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SYSTEM_NOTE = "same process per engine; nothing else should run on the machine meanwhile"


def _model_dir() -> Path:
    from tentalis.config import load_settings
    from tentalis.models.store import ModelStore

    return ModelStore(load_settings().tentalis_home).resolve("smollm2-135m-instruct")


def _prompts(args: argparse.Namespace) -> list[list[tuple[list[dict[str, str]], str]]]:
    """Per step, the P (messages, answer) pairs both engines train on."""
    from tentalis.envs import get_environment, load_environments

    load_environments()
    env = get_environment("math")
    steps = []
    for step in range(args.steps):
        specs = env.generate(args.prompts, split="train", seed=args.seed * 100_003 + step,
                             level="addition")
        steps.append([([{"role": "system", "content": env.system_prompt},
                        {"role": "user", "content": s.prompt}], s.answer) for s in specs])
    return steps


def _reward_fn():  # type: ignore[no-untyped-def]
    """``await reward(text, answer) -> float``: the lenient math scorer the demo trains with."""
    from tentalis.envs.math.lenient import LenientMathScorer
    from tentalis.events import ResultEvent, TaskEvent
    from tentalis.steps.parsing import parse_steps

    scorer = LenientMathScorer()

    async def reward(text: str, answer: str) -> float:
        task = TaskEvent(prompt="-", answer=answer, environment="math")
        parsed = parse_steps(text)
        result = ResultEvent(task_id=task.task_id, task=task, environment="math",
                             worker_id="bench", raw_text=text, steps=parsed.steps,
                             final_answer=parsed.final_answer, parse_status=parsed.status)
        return (await scorer.score(task, result)).outcome_score

    return reward


# ------------------------------------------------------------------------------- tentalis


def run_tentalis(args: argparse.Namespace) -> dict[str, Any]:
    from tentalis.config.training import TrainConfig
    from tentalis.inference.base import ChatRequest
    from tentalis.inference.local import LocalInference
    from tentalis.training.rollouts import Rollout, group_by
    from tentalis.training.trainer import PolicyTrainer

    model_dir, reward = _model_dir(), _reward_fn()
    config = TrainConfig(
        loss_type="dapo", epsilon=0.2, epsilon_high=0.28, beta=0.0, advantage="group",
        step_reward_weight=0.0, overlong="mask", dynamic_sampling=False,
        learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r,
        group_size=args.group, prompts_per_step=args.prompts, micro_batch_size=args.group *
        args.prompts, seed=args.seed, max_new_tokens=args.max_new_tokens, dtype=args.dtype,
    )
    trainer = PolicyTrainer(model_dir, config)
    inference = LocalInference(model_dir, max_batch=args.group * args.prompts, dtype=args.dtype)
    out = Path(tempfile.mkdtemp(prefix="grpo-bench-"))
    steps = []

    async def loop() -> None:
        for i, prompts in enumerate(_prompts(args)):
            t0 = time.perf_counter()
            requests = [ChatRequest(messages=m, max_tokens=args.max_new_tokens,
                                    temperature=args.temperature, seed=args.seed * 7919 + i * 97
                                    + 10 * p + j, adapter="policy" if i else None)
                        for p, (m, _) in enumerate(prompts) for j in range(args.group)]
            completions = await inference.chat(requests)
            t_gen = time.perf_counter()
            rollouts = []
            for k, c in enumerate(completions):
                p = k // args.group
                rollouts.append(Rollout(
                    rollout_id=f"{i}-{k}", group_id=f"{i}-{p}", task_id=f"{i}-{p}",
                    prompt_ids=c.prompt_token_ids, completion_ids=c.completion_token_ids,
                    reward=await reward(c.text, prompts[p][1]), truncated=c.truncated))
            metrics = trainer.train_step(group_by(rollouts))
            t_train = time.perf_counter()
            trainer.save_adapter(out / f"v{i + 1}")
            await inference.load_adapter("policy", str(out / f"v{i + 1}"))
            t1 = time.perf_counter()
            steps.append({
                "step": i + 1, "seconds": t1 - t0, "generate_s": t_gen - t0,
                "train_s": t_train - t_gen, "swap_s": t1 - t_train,
                "completion_tokens": sum(len(c.completion_token_ids) for c in completions),
                "reward_mean": statistics.fmean(r.reward for r in rollouts),
                "loss": metrics.loss,
            })
            print(f"tentalis step {i + 1}: {steps[-1]['seconds']:.1f} s "
                  f"(gen {steps[-1]['generate_s']:.1f}, train {steps[-1]['train_s']:.1f}) "
                  f"reward {steps[-1]['reward_mean']:.3f}", file=sys.stderr, flush=True)
        await inference.close()

    asyncio.run(loop())
    return {"engine": "tentalis", "steps": steps}


# ------------------------------------------------------------------------------------ TRL


def run_trl(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    model_dir, reward = _model_dir(), _reward_fn()
    rows = [{"prompt": m, "answer": a} for prompts in _prompts(args) for m, a in prompts]
    steps: list[dict[str, Any]] = []

    def lenient(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
        return [asyncio.run(reward(c[0]["content"] if isinstance(c, list) else c, a))
                for c, a in zip(completions, answer, strict=True)]

    class Clock(TrainerCallback):
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            self.t0 = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            steps.append({"step": len(steps) + 1, "seconds": time.perf_counter() - self.t0})

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, args.dtype))
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), use_cpu=True,
        bf16=args.dtype == "bfloat16",
        per_device_train_batch_size=args.prompts * args.group, gradient_accumulation_steps=1,
        num_generations=args.group, max_completion_length=args.max_new_tokens,
        temperature=args.temperature, beta=0.0, loss_type="dapo", epsilon=0.2,
        epsilon_high=0.28, mask_truncated_completions=True, scale_rewards="group",
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, max_steps=args.steps, logging_steps=1, report_to="none",
        save_strategy="no", seed=args.seed, gradient_checkpointing=False,
        shuffle_dataset=False, disable_dropout=True,
    )
    lora = LoraConfig(task_type="CAUSAL_LM", r=args.lora_r, lora_alpha=2.0 * args.lora_r,
                      lora_dropout=0.0, target_modules="all-linear", bias="none")
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=lenient,
                          args=config, train_dataset=Dataset.from_list(rows),
                          peft_config=lora, callbacks=[Clock()])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    for step, log in zip(steps, logs, strict=False):
        step["reward_mean"] = log["reward"]
        step["loss"] = log.get("loss")
        step["completion_tokens"] = (log.get("completions/mean_length", 0.0)
                                     * args.prompts * args.group)
        print(f"trl step {step['step']}: {step['seconds']:.1f} s reward "
              f"{step['reward_mean']:.3f}", file=sys.stderr, flush=True)
    return {"engine": "trl", "steps": steps}


# ------------------------------------------------------------------------------- summary


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    steps = run["steps"]
    timed = steps[1:] if len(steps) > 1 else steps
    seconds = sum(s["seconds"] for s in timed)
    tokens = sum(s.get("completion_tokens", 0.0) for s in timed)
    k = max(1, len(steps) // 4)
    return {
        "median_step_s": statistics.median(s["seconds"] for s in timed),
        "completion_tokens_per_s": tokens / seconds if seconds else 0.0,
        "peak_rss_mb": run["peak_rss_mb"],
        "reward_first_steps": statistics.fmean(s["reward_mean"] for s in steps[:k]),
        "reward_last_steps": statistics.fmean(s["reward_mean"] for s in steps[-k:]),
        "steps_averaged_for_reward": k,
    }


def child(args: argparse.Namespace) -> None:
    run = run_tentalis(args) if args.engine == "tentalis" else run_trl(args)
    run["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.child_out).write_text(json.dumps(run))


def parent(args: argparse.Namespace) -> None:
    runs: dict[str, dict[str, Any]] = {}
    for engine in ("tentalis", "trl"):
        out = Path(tempfile.mkstemp(suffix=f"-{engine}.json")[1])
        cmd = [sys.executable, __file__, *sys.argv[1:], "--engine", engine,
               "--child-out", str(out)]
        subprocess.run(cmd, check=True)
        runs[engine] = json.loads(out.read_text())
    summary = {e: summarise(r) for e, r in runs.items()}
    t, r = summary["tentalis"], summary["trl"]
    ratios = {
        "step_time_tentalis_over_trl": t["median_step_s"] / r["median_step_s"],
        "tokens_per_s_tentalis_over_trl": t["completion_tokens_per_s"]
        / max(r["completion_tokens_per_s"], 1e-9),
        "peak_rss_tentalis_over_trl": t["peak_rss_mb"] / r["peak_rss_mb"],
    }
    print(f"{'':28}{'tentalis':>12}{'TRL':>12}{'ratio':>9}")
    for key, label in [("median_step_s", "median s/step"),
                       ("completion_tokens_per_s", "completion tokens/s"),
                       ("peak_rss_mb", "peak RSS MB"),
                       ("reward_first_steps", "reward, first steps"),
                       ("reward_last_steps", "reward, last steps")]:
        ratio = t[key] / r[key] if r[key] else float("nan")
        print(f"{label:28}{t[key]:12.3f}{r[key]:12.3f}{ratio:9.2f}")
    import torch
    import transformers
    import trl

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grpo_vs_trl.json").write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "how": __doc__.split("\n\n")[1].replace("\n", " "),
        "note": SYSTEM_NOTE,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "trl": trl.__version__},
        "settings": {k: v for k, v in vars(args).items()
                     if k not in {"out", "engine", "child_out"}},
        "summary": summary, "ratios": ratios, "runs": runs,
    }, indent=2))
    print(f"wrote {args.out / 'grpo_vs_trl.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (P)")
    parser.add_argument("--group", type=int, default=4, help="completions per prompt (G)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--engine", choices=["tentalis", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="base-weight precision of both engines (auto: bf16 where native)")
    args = parser.parse_args()
    if args.dtype == "auto":
        import torch

        from tentalis.models.precision import auto_dtype

        args.dtype = str(auto_dtype(torch.device("cpu"))).removeprefix("torch.")
    if args.engine:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
