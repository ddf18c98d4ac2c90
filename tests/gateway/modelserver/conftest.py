"""Fixtures for the model-server, security and hot-swap tests: the tiny model behind the
model server, adapters in a store, and a real uvicorn server on a free port."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.security import SecurityConfig
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.local import LocalInference

API_KEY = "tnt-test-key-0123456789abcdefghijklmnop"


def random_lora(model_dir: Path, out: Path, seed: int) -> Path:
    """A random, non-zero LoRA adapter for ``model_dir`` (it visibly changes outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"],
                            init_lora_weights=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def gateway_loras(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> list[Path]:
    root = tmp_path_factory.mktemp("gateway-loras")
    return [random_lora(tiny_model_dir, root / f"l{seed}", seed) for seed in (11, 12)]


@pytest.fixture
def adapter_store(tmp_path: Path, gateway_loras: list[Path]) -> AdapterStore:
    """A store holding ``policy`` v1 and v2."""
    store = AdapterStore(tmp_path / "adapters")
    for src in gateway_loras:
        store.save_version("policy", src)
    return store


@pytest.fixture
def tiny_llm(tiny_model_dir: Path) -> Iterator[LocalInference]:
    client = LocalInference(tiny_model_dir, device="cpu", max_batch=8, model_name="tiny")
    yield client
    client._batcher.close()


class ServerThread:
    """A uvicorn server for ``app`` on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app: FastAPI, log_level: str = "warning") -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level=log_level,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def model_app(tiny_llm: LocalInference, adapter_store: AdapterStore) -> FastAPI:
    """The model server app with one API key, no rate limit."""
    return create_model_app(tiny_llm, adapter_store,
                            SecurityConfig.with_keys(API_KEY, rate_limit_per_minute=0))


@pytest.fixture
def model_server(model_app: FastAPI) -> Iterator[ServerThread]:
    with ServerThread(model_app) as server:
        yield server


@pytest.fixture
def server_thread() -> type[ServerThread]:
    """The :class:`ServerThread` class, for tests that build their own app."""
    return ServerThread
