"""A tiny random Llama with a real tokenizer: the test model of the whole project.

``build_tiny_llama(dir)`` writes a directory that loads like any Hugging Face model
(``config.json``, ``model.safetensors``, ``tokenizer.json``, a ChatML chat template), so
chat templating, batched generation, decoding, LoRA and training all run end to end in a
second on CPU. The weights are random, so the text is gibberish; everything else is real.

The tokenizer is a byte-level BPE trained in code on a small built-in corpus: any string
round-trips through it (no unknown tokens). Same arguments, same seed → byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

_CORPUS = """\
You are a helpful assistant. Answer the question step by step.
What is 2 + 3? The answer is 5. What is 12 times 7? The answer is 84.
Paris is the capital of France. Berlin is the capital of Germany.
The quick brown fox jumps over the lazy dog. A stitch in time saves nine.
<step>First, add the numbers.</step> <step>Then, check the result.</step>
def add(a, b):\n    return a + b\n
import os\nprint("hello, world")\n
Reward models score each step. Feedback helps the agent learn from its mistakes.
Please think carefully, then give a short and correct final answer.
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 100 1000 = + - * / ( ) [ ] { } < >
"""


def build_tiny_tokenizer(vocab_size: int = 512):  # -> PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer on the built-in corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(keepends=True) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=2048,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_llama(
    directory: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    max_position: int = 2048,
    initializer_range: float = 0.1,
) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` + tokenizer to ``directory`` and return it.

    ``vocab_size`` is the BPE target; the model's vocabulary is exactly the tokenizer's.
    ``initializer_range`` is larger than Llama's 0.02 so that next-token distributions are
    peaked: greedy decoding then has few near-ties and is stable across batch shapes.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(vocab_size)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position,
        initializer_range=initializer_range,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
