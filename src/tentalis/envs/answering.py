"""How a task is put to a model, and answers sampled exactly as a worker samples them."""

from __future__ import annotations

from collections.abc import Sequence

from tentalis.envs.registry import get_environment
from tentalis.events import ResultEvent, TaskEvent
from tentalis.inference.base import ChatRequest, InferenceClient
from tentalis.steps.results import result_from_completion


def build_messages(task: TaskEvent) -> list[dict[str, str]]:
    """The chat the model sees for a task: its environment's instructions, then the prompt."""
    env = get_environment(task.environment)
    return [
        {"role": "system", "content": env.system_prompt},
        {"role": "user", "content": task.prompt},
    ]


async def generate_results(
    inference: InferenceClient,
    tasks: Sequence[TaskEvent],
    *,
    samples: int = 1,
    temperature: float = 0.7,
    max_new_tokens: int = 64,
    seed: int = 0,
    worker_id: str = "calibrate",
) -> list[ResultEvent]:
    """``samples`` sampled answers per task, exactly as a worker would produce them."""
    requests, keys = [], []
    for i, task in enumerate(tasks):
        for k in range(samples):
            requests.append(ChatRequest(build_messages(task), max_tokens=max_new_tokens,
                                        temperature=temperature, seed=seed * 100_003 + i * 31 + k))
            keys.append(task)
    completions = await inference.chat(requests)
    return [
        result_from_completion(task.model_copy(update={"sample_index": k % samples}), c,
                               worker_id=worker_id, session_id="")
        for k, (task, c) in enumerate(zip(keys, completions, strict=True))
    ]
