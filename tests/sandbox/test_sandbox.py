"""The sandbox stops runaway programs within their limits and leaves nothing behind."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from tentalis.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, sandbox_python
from tentalis.sandbox.isolation import UID_BASE, check_isolation

# The wall clock is generous so that on a loaded machine the limit under test fires first.
LIMITS = SandboxLimits(wall_s=30.0, cpu_s=1, memory_mb=256, max_processes=16, max_file_mb=1)


def _sandbox_processes() -> list[str]:
    """Processes of any sandbox uid still alive on the machine."""
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if int(line.split()[0]) >= UID_BASE]


@pytest.fixture
def box():  # type: ignore[no-untyped-def]
    with Sandbox(LIMITS, files={"data/in.txt": "one\ntwo\nthree\n"}) as b:
        yield b
    assert _sandbox_processes() == []


def test_a_normal_program_runs_and_returns_its_output(box: Sandbox) -> None:
    r = box.run("wc -l data/in.txt && echo oops >&2 && exit 3")
    assert r.stdout == "3 data/in.txt\n" and r.stderr.strip() == "oops"
    assert r.exit_code == 3 and not r.timed_out and r.killed_reason is None and not r.ok
    ok = box.run([sandbox_python(), "-c", "import sys; print(sys.stdin.read().upper())"],
                 stdin="hello")
    assert ok.ok and ok.stdout == "HELLO\n"


def test_the_program_runs_as_an_unprivileged_uid_in_a_scrubbed_environment(box: Sandbox) -> None:
    r = box.run("id -u; echo $HOME; env | wc -l; touch made.txt; echo x > /etc/tentalis-probe")
    uid, home, n_env = r.stdout.split()[:3]
    assert int(uid) >= UID_BASE and home == str(box.path) and int(n_env) <= 8
    assert "Permission denied" in r.stderr
    assert box.read("made.txt") == ""


def test_infinite_loop_is_stopped_by_the_cpu_limit(box: Sandbox) -> None:
    r = box.run([sandbox_python(), "-c", "while True: pass"])
    assert r.killed_reason == "cpu" and not r.ok
    assert r.duration_s < LIMITS.wall_s


def test_sleeping_forever_is_stopped_by_the_wall_clock(box: Sandbox) -> None:
    start = time.monotonic()
    r = box.run("sleep 60", limits=SandboxLimits(wall_s=1.0))
    assert r.timed_out and r.killed_reason == "time"
    assert time.monotonic() - start < 10.0  # 1 s limit; slack for a loaded machine


def test_memory_bomb_is_stopped(box: Sandbox) -> None:
    r = box.run([sandbox_python(), "-c", "x = []\nwhile True: x.append(bytearray(50_000_000))"])
    assert r.killed_reason == "memory" and "MemoryError" in r.stderr


def test_fork_bomb_is_stopped_and_leaves_no_process(box: Sandbox) -> None:
    bomb = "import os\nwhile True:\n    os.fork()"
    r = box.run([sandbox_python(), "-c", bomb])
    assert r.killed_reason == "processes" and not r.ok
    # the top shell waits only for its first pipeline; sleep so the bomb has time to hit
    # the process limit before pid 1 exits and the namespace dies (else nothing is printed)
    shell = box.run(["bash", "-c", ":(){ :|:& };: ; sleep 1"])
    assert "Resource temporarily unavailable" in shell.stderr
    assert _sandbox_processes() == []


def test_background_processes_die_with_the_program(box: Sandbox) -> None:
    r = box.run("setsid sleep 100 & nohup sleep 100 >/dev/null 2>&1 & echo started")
    assert r.ok and r.stdout == "started\n" and r.duration_s < 10.0
    assert _sandbox_processes() == []


def test_network_is_refused_locally_and_outside(box: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        for host in ("127.0.0.1", "1.1.1.1"):
            code = f"import socket; socket.create_connection(('{host}', {port}), timeout=2)"
            r = box.run([sandbox_python(), "-c", code])
            assert r.exit_code != 0 and "OSError" in r.stderr, (host, r)
        server.settimeout(0.1)
        with pytest.raises(TimeoutError):
            server.accept()  # nobody got through
    finally:
        server.close()


def test_output_and_files_are_bounded(box: Sandbox) -> None:
    r = box.run("yes | head -c 5000000", limits=SandboxLimits(max_output_bytes=1000))
    assert len(r.stdout) == 1000 and r.stdout_truncated
    big = box.run("head -c 3000000 /dev/zero > big.bin")
    assert big.killed_reason == "file_size"


def test_links_out_of_the_working_directory_are_not_read(box: Sandbox) -> None:
    box.run("ln -s /etc/hostname host; ln -s data/in.txt inside")
    assert box.read("host") is None and box.read("inside") == "one\ntwo\nthree\n"
    with pytest.raises(ValueError):
        box.write("../escape.txt", "x")


def test_missing_isolation_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    check_isolation.cache_clear()
    monkeypatch.setattr("shutil.which", lambda name: None)
    try:
        with pytest.raises(SandboxUnavailable, match="unshare"), Sandbox():
            pass
    finally:
        monkeypatch.undo()
        check_isolation.cache_clear()
