"""Serve a batch whose rows all use one LoRA adapter from merged weights.

Unmerged, every LoRA layer adds two small matmuls (x·Aᵀ, then ·Bᵀ) per forward — and
peft's per-row routing adds index/scatter copies on top (the costs per layer, float32 and
bf16: docs/measurements.md, "LoRA layer cost"). Merging removes the pair and the routing;
it is applied to float32 weights only (below).

:class:`MergedWeights` keeps, for one adapter at a time, a second copy of each wrapped
linear weight with the adapter's delta added (``W + scaling · B·A``, computed in float32 by
peft's ``get_delta_weight`` and rounded once to the weight dtype). Switching between the
pristine and the merged weights swaps tensor pointers (no copy, no rounding drift: the
pristine tensors are never modified); the merged copy is recomputed only when the adapter
changes. Outside :meth:`MergedWeights.applied` the model always holds its pristine
weights, so anything else that uses the model between batches (a trainer sharing it,
mixed-adapter batches) sees the base model exactly.

Float32 weights only (LocalInference checks): in bf16 the sum ``W + ΔW`` keeps 8
mantissa bits, which loses part of a small LoRA delta (on SmolLM2 with a trained adapter,
merged and routed greedy answers diverged within a few tokens). Only plain LoRA on
``nn.Linear`` layers merges; an adapter with DoRA or on other layer types reports
:meth:`can_merge` False and is served through the routed path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def _lora_linears(model: Any, internal: str) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules()
            if isinstance(m, LoraLayer) and internal in getattr(m, "lora_A", {})]


class MergedWeights:
    """A cached merged copy of one adapter's weights; see the module docstring."""

    def __init__(self) -> None:
        self.adapter: str | None = None  # internal name whose merge is cached
        self._layers: list[tuple[Any, torch.Tensor, torch.Tensor]] = []  # (linear, W0, Wm)

    def invalidate(self, internal: str | None = None) -> None:
        """Drop the cached merge (of ``internal`` only, when given): its weights changed."""
        if internal is None or internal == self.adapter:
            self.adapter, self._layers = None, []

    @staticmethod
    def can_merge(model: Any, internal: str) -> bool:
        layers = _lora_linears(model, internal)
        return bool(layers) and all(
            isinstance(m.base_layer, torch.nn.Linear)
            and not getattr(m, "use_dora", {}).get(internal, False)
            and internal not in getattr(m, "lora_magnitude_vector", {})
            for m in layers
        )

    @torch.no_grad()
    def _build(self, model: Any, internal: str) -> None:
        layers = []
        for module in _lora_linears(model, internal):
            linear = module.base_layer
            pristine = linear.weight.data
            delta = module.get_delta_weight(internal).to(torch.float32)
            merged = (pristine.to(torch.float32) + delta).to(pristine.dtype)
            layers.append((linear, pristine, merged))
        self.adapter, self._layers = internal, layers

    @contextlib.contextmanager
    def applied(self, model: Any, internal: str) -> Iterator[None]:
        """Within the block, every LoRA-wrapped linear holds ``W + ΔW`` of ``internal``;
        route rows as base (no adapter) meanwhile, or the delta is added twice."""
        if self.adapter != internal:
            self._build(model, internal)
        for linear, _, merged in self._layers:
            linear.weight.data = merged
        try:
            yield
        finally:
            for linear, pristine, _ in self._layers:
                linear.weight.data = pristine
