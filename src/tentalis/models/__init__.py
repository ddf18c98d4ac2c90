"""tentalis.models: fetch, convert and cache model weights; the tiny test model."""

from tentalis.models.smollm2 import ALIAS as SMOLLM2_ALIAS
from tentalis.models.smollm2 import fetch_smollm2
from tentalis.models.store import ALIASES, ModelStore
from tentalis.models.tiny import build_tiny_llama, build_tiny_tokenizer

__all__ = [
    "ALIASES",
    "SMOLLM2_ALIAS",
    "ModelStore",
    "build_tiny_llama",
    "build_tiny_tokenizer",
    "fetch_smollm2",
]
