from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from pydantic import SecretStr
from typer.testing import CliRunner

from tentalis.config import GuardConfig, TrainConfig, load_settings
from tentalis.config.variables import VARIABLES
from tentalis.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.delenv("TENTALIS_CONFIG", raising=False)
    for name in VARIABLES:
        if name != "tentalis_home":
            monkeypatch.delenv(name.upper(), raising=False)
    return tmp_path


def test_defaults_and_derived_paths(isolated_home) -> None:
    s = load_settings()
    assert s.inference.backend == "local" and s.manager.task_timeout == 120
    assert s.store_path == isolated_home / "experience.db"
    assert list(s.worker.environments) == ["math"]


def test_environment_overrides_and_toml_file(isolated_home, monkeypatch) -> None:
    (isolated_home / "config.toml").write_text('task_timeout_seconds = 12.5\nmanager_id = "m-7"\n')
    monkeypatch.setenv("MANAGER_ID", "from-env")
    s = load_settings()
    assert s.manager.task_timeout == 12.5  # from the file
    assert s.manager.manager_id == "from-env"  # env beats file
    assert load_settings(manager_id="cli").manager.manager_id == "cli"  # explicit beats env


def test_invalid_value_names_the_variable_and_allowed_values(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_BACKEND", "tensorflow")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "INFERENCE_BACKEND='tensorflow'" in msg
    for allowed in ("local", "openai", "ollama", "vllm"):
        assert allowed in msg


def test_out_of_range_number_is_rejected(monkeypatch) -> None:
    monkeypatch.setenv("TASK_TIMEOUT_SECONDS", "-3")
    with pytest.raises(ConfigError, match="TASK_TIMEOUT_SECONDS"):
        load_settings()


def test_ollama_backend_derives_its_base_url(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_BACKEND", "ollama")
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434/")
    assert load_settings().inference.resolved_base_url() == "http://gpu-box:11434/v1"


def test_toml_round_trip_leaves_out_secrets(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_API_KEY", "sk-very-secret")
    data = load_settings().to_toml_dict()
    assert "api_key" not in data["inference"] and "sk-very-secret" not in str(data)


# --- every variable, by section ------------------------------------------------------------
# variable → (value set in the environment, value read back from its section field)
SAMPLES: dict[str, tuple[str, object]] = {
    "TENTALIS_STORE": ("/tmp/ledger.db", Path("/tmp/ledger.db")),
    "TENTALIS_SEED": ("7", 7),
    "LOG_LEVEL": ("DEBUG", "DEBUG"),
    "NATS_URL": ("nats://bus:4222", "nats://bus:4222"),
    "NATS_EMBEDDED": ("never", "never"),
    "NATS_CONNECT_TIMEOUT": ("3.5", 3.5),
    "BUS_MAX_DELIVER": ("9", 9),
    "BUS_ACK_WAIT_SECONDS": ("30", 30.0),
    "BUS_STREAM_MAX_AGE_DAYS": ("2", 2.0),
    "LLM_MODEL": ("some/model", "some/model"),
    "INFERENCE_BACKEND": ("vllm", "vllm"),
    "INFERENCE_BASE_URL": ("http://gpu:8000/v1", "http://gpu:8000/v1"),
    "INFERENCE_API_KEY": ("sk-1", SecretStr("sk-1")),
    "INFERENCE_DEVICE": ("cpu", "cpu"),
    "INFERENCE_DTYPE": ("float32", "float32"),
    "INFERENCE_MAX_BATCH": ("3", 3),
    "INFERENCE_BATCH_WINDOW_MS": ("12", 12.0),
    "OLLAMA_HOST": ("http://box:11434", "http://box:11434"),
    "MAX_NEW_TOKENS": ("64", 64),
    "TEMPERATURE": ("0.3", 0.3),
    "JUDGE_BACKEND": ("openai", "openai"),
    "JUDGE_BASE_URL": ("http://judge/v1", "http://judge/v1"),
    "JUDGE_MODEL": ("judge-7b", "judge-7b"),
    "JUDGE_VOTES": ("3", 3),
    "JUDGE_AGGREGATE": ("mean", "mean"),
    "JUDGE_MAX_RETRIES": ("1", 1),
    "WORKER_ID": ("w-9", "w-9"),
    "WORKER_ENVIRONMENTS": ("math, terminal", ("math", "terminal")),
    "WORKER_ADAPTER": ("demo", "demo"),
    "MANAGER_ID": ("m-9", "m-9"),
    "TASK_TIMEOUT_SECONDS": ("45", 45.0),
    "MANAGER_REVIEW": ("llm", "llm"),
    "MANAGER_MAX_IN_FLIGHT": ("2", 2),
    "TRAINER_BACKEND": ("openrlhf", "openrlhf"),
    "TRAINING_CLIP_EPSILON_HIGH": ("0.3", 0.3),
    "GUARD_ENABLED": ("false", False),
    "GUARD_WARMUP": ("32", 32),
    "GUARD_WINDOW": ("48", 48),
    "GUARD_CHECK_EVERY": ("8", 8),
    "GUARD_LENGTH_Z": ("3", 3.0),
    "GUARD_KL_THRESHOLD": ("0.2", 0.2),
    "GUARD_KL_RISING_CHECKS": ("4", 4),
    "GUARD_JUDGE_COMPONENT": ("prm", "prm"),
    "GUARD_CHEAP_COMPONENT": ("verifier", "verifier"),
    "GUARD_GAP_THRESHOLD": ("0.4", 0.4),
    "GUARD_RHO_DROP": ("0.6", 0.6),
    "GUARD_MIN_PAIRS": ("8", 8),
    "GUARD_HARD_STOP_SIGNALS": ("3", 3),
    "GUARD_ESCALATE_AFTER": ("2", 2),
    "GATEWAY_HOST": ("0.0.0.0", "0.0.0.0"),
    "GATEWAY_API_KEYS": ("a,b", SecretStr("a,b")),
    "GATEWAY_API_KEY_FILE": ("/tmp/keys", Path("/tmp/keys")),
    "GATEWAY_MAX_BODY_BYTES": ("2048", 2048),
    "GATEWAY_MAX_N": ("2", 2),
    "GATEWAY_MAX_TOKENS": ("100", 100),
    "GATEWAY_MAX_MESSAGES": ("10", 10),
    "GATEWAY_RATE_LIMIT_PER_MINUTE": ("0", 0),
    "BRIDGE_ENABLED": ("false", False),
    "BRIDGE_PORT": ("9100", 9100),
    "INTERCEPT_ENABLED": ("false", False),
    "INTERCEPT_PORT": ("9200", 9200),
    "INTERCEPT_BACKEND_URL": ("http://up/v1", "http://up/v1"),
    "INTERCEPT_BACKEND_API_KEY": ("sk-up", SecretStr("sk-up")),
    "INTERCEPT_TIMEOUT_SECONDS": ("30", 30.0),
    "INTERCEPT_TRAINING_DATA": ("false", False),
    "INTERCEPT_SESSION_MIN_MESSAGES": ("2", 2),
    "INTERCEPT_SIDE_TURN_PATTERN": ("^Summari[sz]e", "^Summari[sz]e"),
    "MODEL_SERVER_ENABLED": ("false", False),
    "MODEL_SERVER_PORT": ("9300", 9300),
    "MODEL_SERVER_ID": ("ms-2", "ms-2"),
}


def test_every_variable_has_a_sample() -> None:
    assert set(SAMPLES) | {"TENTALIS_HOME"} == {n.upper() for n in VARIABLES}


def _read(settings, variable: str):  # type: ignore[no-untyped-def]
    section, field = VARIABLES[variable.lower()]
    return getattr(getattr(settings, section) if section else settings, field)


@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_each_variable_sets_its_section_field(variable: str, monkeypatch) -> None:
    raw, expected = SAMPLES[variable]
    monkeypatch.setenv(variable, raw)
    value = _read(load_settings(), variable)
    assert (tuple(value) if variable == "WORKER_ENVIRONMENTS" else value) == expected


@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_each_flat_key_loads_from_toml_and_as_keyword(variable: str, isolated_home) -> None:
    raw, expected = SAMPLES[variable]
    (isolated_home / "config.toml").write_text(f"{variable.lower()} = {raw!r}\n")
    from_file = _read(load_settings(), variable)
    (isolated_home / "config.toml").unlink()
    from_kwarg = _read(load_settings(**{variable.lower(): raw}), variable)
    for value in (from_file, from_kwarg):
        assert (tuple(value) if variable == "WORKER_ENVIRONMENTS" else value) == expected


def test_tentalis_home_variable(isolated_home) -> None:
    assert load_settings().tentalis_home == isolated_home


def test_guard_and_training_sections_are_their_component_configs() -> None:
    s = load_settings()
    assert s.guard == GuardConfig() and isinstance(s.training, TrainConfig)
    assert s.training.epsilon_high == TrainConfig().epsilon_high


def test_empty_cheap_component_means_the_mean_of_the_others(monkeypatch) -> None:
    monkeypatch.setenv("GUARD_CHEAP_COMPONENT", "")
    assert load_settings().guard.cheap_component is None


# --- TOML: sections and flat keys ----------------------------------------------------------
def test_toml_section_tables_load_with_field_names(isolated_home, monkeypatch) -> None:
    (isolated_home / "config.toml").write_text(
        "[guard]\nwarmup = 32\nlength_z_threshold = 3.0\n\n"
        "[training]\nlearning_rate = 0.001\nloss_type = 'grpo'\n\n"
        "[bus]\nurl = 'nats://file:4222'\n")
    monkeypatch.setenv("NATS_URL", "nats://env:4222")
    s = load_settings()
    assert (s.guard.warmup, s.guard.length_z_threshold) == (32, 3.0)
    assert (s.training.learning_rate, s.training.loss_type) == (0.001, "grpo")
    assert s.guard.window == 64  # the rest of the section keeps its defaults
    assert s.bus.url == "nats://env:4222"  # env beats the file, field by field


def test_a_config_file_written_before_sections_still_loads(isolated_home, monkeypatch) -> None:
    # what `tentalis init` wrote before settings had sections: every field, flat, in lower
    # case (a few values changed from the defaults; the OPD / alignment keys are ignored)
    old = Path(__file__).parent / "data" / "config_flat_before_sections.toml"
    monkeypatch.setenv("TENTALIS_CONFIG", str(old))
    s = load_settings()
    assert s.store_path == Path("/home/user/.tentalis/experience.db")  # TENTALIS_HOME: env
    assert tuple(s.worker.environments) == ("math", "terminal")
    assert (s.manager.task_timeout, s.guard.warmup) == (30.0, 32)
    assert (s.training.epsilon_high, s.gateway.bridge_port) == (0.3, 9100)
    assert s.guard.cheap_component is None  # written as ""


def test_a_flat_key_beats_its_field_in_a_table(isolated_home) -> None:
    (isolated_home / "config.toml").write_text("guard_warmup = 40\n[guard]\nwarmup = 32\n")
    assert load_settings().guard.warmup == 40


def test_init_writes_sections_that_load_back(isolated_home, monkeypatch) -> None:
    monkeypatch.setenv("GUARD_WARMUP", "32")
    monkeypatch.setenv("TRAINING_CLIP_EPSILON_HIGH", "0.3")
    monkeypatch.setenv("INFERENCE_MAX_BATCH", "4")
    written = load_settings()
    data = written.to_toml_dict()
    assert data["guard"]["warmup"] == 32 and data["training"]["epsilon_high"] == 0.3
    assert "batch_size" not in data["worker"]  # linked: comes from INFERENCE_MAX_BATCH
    (isolated_home / "config.toml").write_text(tomli_w.dumps(data))
    for name in ("GUARD_WARMUP", "TRAINING_CLIP_EPSILON_HIGH", "INFERENCE_MAX_BATCH"):
        monkeypatch.delenv(name)
    assert load_settings() == written


def test_unknown_toml_table_field_names_it(isolated_home) -> None:
    (isolated_home / "config.toml").write_text("[guard]\nwarmpu = 32\n")
    with pytest.raises(ConfigError, match=r"GUARD\.WARMPU"):
        load_settings()


# --- errors name the variable --------------------------------------------------------------
def test_invalid_section_value_names_its_variable(monkeypatch) -> None:
    monkeypatch.setenv("GUARD_WARMUP", "1")
    with pytest.raises(ConfigError, match="GUARD_WARMUP='1'"):
        load_settings()


def test_inconsistent_section_says_what_to_change(monkeypatch) -> None:
    monkeypatch.setenv("GUARD_MIN_PAIRS", "100")
    with pytest.raises(ConfigError, match="lower GUARD_MIN_PAIRS"):
        load_settings()


def test_unknown_keyword_is_an_error() -> None:
    with pytest.raises(ConfigError, match="opd_weight"):
        load_settings(opd_weight=0.3)


def test_a_flat_attribute_says_where_it_lives() -> None:
    with pytest.raises(AttributeError, match=r"LLM_MODEL is settings\.inference\.model"):
        load_settings().llm_model  # noqa: B018


def test_fields_nothing_read_are_gone(monkeypatch) -> None:
    for name in ("OPD_MODE", "OPD_WEIGHT", "RL_WEIGHT", "META_RL_ENABLED",
                 "ALIGNMENT_ENABLED", "ALIGNMENT_RESULTS_DIR"):
        assert name.lower() not in VARIABLES
        monkeypatch.setenv(name, "x")  # an old variable left in the environment is ignored
    load_settings()


# --- linked fields: one section's value passed to another in one place ---------------------
def test_worker_takes_generation_and_delivery_from_their_sections(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_MAX_BATCH", "3")
    monkeypatch.setenv("BUS_MAX_DELIVER", "2")
    monkeypatch.setenv("TENTALIS_SEED", "5")
    s = load_settings(max_new_tokens=40, temperature=0.1, bus_ack_wait_seconds=9)
    w = s.worker
    assert (w.batch_size, w.max_new_tokens, w.temperature) == (3, 40, 0.1)
    assert (w.max_deliver, w.ack_wait, w.seed) == (2, 9.0, 5)
    assert s.judge.seed == 5 and s.training.seed == 5


def test_a_linked_field_set_in_its_section_is_refused(isolated_home) -> None:
    (isolated_home / "config.toml").write_text("[worker]\nbatch_size = 3\n")
    with pytest.raises(ConfigError, match=r"worker\.batch_size"):
        load_settings()


def test_updated_copy_validates_and_links_again() -> None:
    s = load_settings()
    u = s.updated(inference_max_batch=64, worker_adapter="demo", nats_embedded="never")
    assert (u.worker.batch_size, u.worker.follow_adapter, u.bus.embedded) == (64, "demo", "never")
    assert s.worker.batch_size == 8  # the original is unchanged
    with pytest.raises(ConfigError):
        load_settings().updated(guard={"warmup": 1})


# --- CLI: each option documented once, on its field ----------------------------------------
def test_train_options_take_their_help_from_trainconfig() -> None:
    from tentalis.cli.app import app

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    for field in ("learning_rate", "group_size", "lora_r", "save_every", "backend"):
        description = TrainConfig.model_fields[field].description
        assert description and description.split(":")[0].split("(")[0] in result.output
    assert "TRAINER_BACKEND" in result.output


def test_every_setting_is_documented_on_its_field() -> None:
    from tentalis.config import SECTIONS, Settings

    for name, field in Settings.model_fields.items():
        fields = field.annotation.model_fields if name in SECTIONS else {name: field}  # type: ignore[union-attr]
        missing = [f for f, info in fields.items() if not info.description]
        assert not missing, f"{name}: {missing} need a description"
