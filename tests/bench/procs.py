"""Real processes for the benchmarks: ``hub serve``, ``node serve`` and the workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable


def env() -> dict[str, str]:
    """The environment of every process started: no stray SAMVERKA_* settings, no
    metrics port, no scheduled harvest (nothing else competes for the CPU)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    e["SAMVERKA_METRICS_LISTEN"] = ""
    e["SAMVERKA_HARVEST_ENABLED"] = "false"
    # No node here witnesses the hub's log: take its checkpoints uncosigned (what sync takes
    # from the hub is still proven in its log; witnessing has tests of its own).
    e["SAMVERKA_WITNESS_QUORUM"] = "0"
    return e


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def rss_mb(pid: int) -> float:
    """Resident set size of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def serve_quietly(args: list[str], address_file: Path, what: str) -> subprocess.Popen[bytes]:
    """``python ARGS --address-file ADDRESS_FILE`` with its output discarded, returned once
    it has written its bound address there (stopped if that takes over 60 s)."""
    proc = subprocess.Popen(
        [PYTHON, *args, "--address-file", str(address_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    try:
        wait_for(lambda: address_file.exists() and address_file.read_text(), 60, what)
    except BaseException:
        stop(proc)
        raise
    return proc


@dataclass
class RunningHub:
    dir: Path
    proc: subprocess.Popen[bytes]
    member: str
    public: str
    web: str


@contextmanager
def hub_serve(hub_dir: Path, *, web: bool = False) -> Iterator[RunningHub]:
    address_file = hub_dir / "bench.addresses"
    address_file.unlink(missing_ok=True)
    err = open(hub_dir / "serve.err", "wb")  # noqa: SIM115
    args = [
        PYTHON,
        "-m",
        "samverka",
        "hub",
        "serve",
        "--dir",
        str(hub_dir),
        "--listen",
        "127.0.0.1:0",
        "--public-listen",
        "127.0.0.1:0",
        "--address-file",
        str(address_file),
        "--log-level",
        "warning",
        "--web-listen",
        "127.0.0.1:0" if web else "",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env())
    try:

        def ready() -> dict[str, str] | None:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"hub serve exited {proc.returncode}: {(hub_dir / 'serve.err').read_text()}"
                )
            return json.loads(address_file.read_text()) if address_file.exists() else None

        bound = wait_for(ready, 120, "hub serve to listen")
        yield RunningHub(hub_dir, proc, bound["member"], bound["public"], bound.get("web", ""))
    finally:
        stop(proc)
        err.close()


def worker(*args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run tests/bench/worker.py to its end; its last stdout line is JSON."""
    proc = subprocess.run(
        [PYTHON, str(BENCH / "worker.py"), *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, str(BENCH / "worker.py"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
