"""What constrained decoding costs in the local engine: grammar compilation, and decode
time per token with and without a JSON-schema mask.

SmolLM2-135M-Instruct when it is cached (``tentalis init``), else the tiny test model.
Compilation: the first constraint (xgrammar's tokenizer info plus the grammar), then a
new schema, then the same one again (cached). Decoding: for each batch size, batches of
requests decoded under a JSON schema and the same requests without it, alternating,
``--repeats`` times; reported as milliseconds per generated token (the two differ in
length: a constrained row stops when its JSON is complete, so its prefill is shared by
fewer tokens). The mask's own cost, free of that and of CPU noise in the forward pass:
the constrained outputs replayed through fresh grammar rows (mask a vocabulary-sized
row, accept the token), in milliseconds per row and token.

    python benchmarks/constrained_decoding.py [--repeats 3] [--batch 1 8]

The results file (JSON, with the command and machine) goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from tentalis.inference.base import ChatRequest, OutputConstraint
from tentalis.inference.local import LocalInference
from tentalis.inference.tool_prompt import call_constraint

SCHEMA = {"type": "object",
          "properties": {"city": {"type": "string", "maxLength": 24},
                         "temperature_c": {"type": "integer"},
                         "sunny": {"type": "boolean"}},
          "required": ["city", "temperature_c", "sunny"]}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
ASK = [{"role": "user", "content": "Give the weather in Paris as JSON."}]


def model_dir() -> tuple[Path, str]:
    cached = Path.home() / ".tentalis" / "models" / "smollm2-135m-instruct"
    if (cached / "config.json").is_file():
        return cached, "smollm2-135m-instruct"
    from tentalis.models.tiny import build_tiny_llama

    out = Path(tempfile.mkdtemp()) / "tiny"
    build_tiny_llama(out)
    return out, "tiny (random)"


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 4)


async def decode(llm: LocalInference, batch: int, constraint: OutputConstraint | None,
                 max_tokens: int) -> tuple[float, list[list[int]]]:
    requests = [ChatRequest(messages=ASK, max_tokens=max_tokens, temperature=1.0, seed=i,
                            constraint=constraint) for i in range(batch)]
    start = time.perf_counter()
    done = await llm.chat(requests)
    return time.perf_counter() - start, [c.completion_token_ids for c in done]


def replay_ms(llm: LocalInference, constraint: OutputConstraint,
              outputs: list[list[int]]) -> float:
    """Milliseconds per token of mask + accept, replaying ``outputs`` through new rows."""
    logits = torch.zeros(llm._grammars.vocab_size)
    spent, tokens = 0.0, 0
    for ids in outputs:
        row = llm._grammars.row(constraint)
        start = time.perf_counter()
        for tok in ids:
            row.mask(logits)
            row.accept(tok)
        spent += time.perf_counter() - start
        tokens += len(ids)
        logits.zero_()
    return round(1000 * spent / max(tokens, 1), 4)


async def main(args: argparse.Namespace) -> dict:
    path, name = model_dir()
    llm = LocalInference(path, device="cpu", max_batch=max(args.batch))
    grammars = llm._grammars
    compile_s = {
        "first (tokenizer info + grammar)": timed(
            lambda: grammars.compile(OutputConstraint(json_schema=json.dumps(SCHEMA)))),
        "another schema (a tool call)": timed(lambda: grammars.compile(call_constraint([TOOL]))),
        "same schema again (cached)": timed(
            lambda: grammars.compile(OutputConstraint(json_schema=json.dumps(SCHEMA)))),
    }
    schema = OutputConstraint(json_schema=json.dumps(SCHEMA))
    await decode(llm, 1, schema, 8)  # warm-up
    await decode(llm, 1, None, 8)
    rows = []
    for batch in args.batch:
        totals = {"constrained": [0.0, 0], "free": [0.0, 0]}
        constrained: list[list[int]] = []
        for _ in range(args.repeats):
            for key, c in (("constrained", schema), ("free", None)):
                seconds, outputs = await decode(llm, batch, c, args.max_tokens)
                totals[key][0] += seconds
                totals[key][1] += sum(len(o) for o in outputs)
                if c is not None:
                    constrained += outputs
        per = {k: round(1000 * s / max(t, 1), 2) for k, (s, t) in totals.items()}
        rows.append({"batch": batch, "repeats": args.repeats,
                     "ms_per_token": per, "tokens": {k: t for k, (_, t) in totals.items()},
                     "mask_ms_per_row_token": replay_ms(llm, schema, constrained)})
    await llm.close()
    return {
        "command": "python benchmarks/constrained_decoding.py " + " ".join(sys.argv[1:]),
        "how": "LocalInference on CPU, temperature 1, seeded; JSON schema compiled by "
               "xgrammar, masks applied per row in the decode loop; constrained and free "
               "batches alternate",
        "model": name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "platform": platform.platform()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "compile_s": compile_s,
        "decode": rows,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=48)
    result = asyncio.run(main(parser.parse_args()))
    out = Path(__file__).parent / "results" / "constrained_decoding.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
