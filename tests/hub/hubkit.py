"""Helpers for the hub's membership tests (``import hubkit``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop
from samverka.membership.enrollment import build_enrollment_request, build_key_rotation
from samverka.protocol.signing import SigningKey
from samverka.transport.pki import create_csr
from samverka.v1 import directory_pb2
from samverka_hub.folder import Hub, init_hub

T = TypeVar("T")

#: "Now" for the council's clock when a test starts (the real time at import, so that
#: init_hub's first directory fits); tests move the clock from there.
T0 = time.time_ns() // 1_000_000
HOUR = 3600 * 1000
DAY = 24 * HOUR


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class HubUnderTest:
    hub: Hub
    clock: Clock

    @property
    def council(self):  # type: ignore[no-untyped-def]
        return self.hub.council


@contextlib.contextmanager
def make_hub(path: Path, *, store_url: str = "") -> Iterator[HubUnderTest]:
    hub = init_hub(path, store_url=store_url)
    clock = Clock()
    hub.council.clock = clock
    try:
        yield HubUnderTest(hub, clock)
    finally:
        hub.close()


@dataclass
class Applicant:
    """A kommun's keys as its node would make them."""

    kommunkod: str
    key: SigningKey
    tls_key_pem: bytes
    csr_der: bytes

    @classmethod
    def make(cls, kommunkod: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Applicant:
        csr = create_csr(kommunkod, hosts=hosts)
        return cls(kommunkod, SigningKey.generate(), csr.key_pem, csr.csr_der)

    def request(
        self, *, at: int = T0, address: str = "", contact_role: str = "IT-chef"
    ) -> directory_pb2.SignedEnrollmentRequest:
        return build_enrollment_request(
            self.key,
            kommunkod=self.kommunkod,
            csr_der=self.csr_der,
            created_at_ms=at,
            contact_role=contact_role,
            address=address,
        )

    def rotation(self, new: SigningKey, *, at: int = T0) -> directory_pb2.SignedKeyRotation:
        return build_key_rotation(self.key, new, kommunkod=self.kommunkod, created_at_ms=at)


# -- real processes --------------------------------------------------------------------


@dataclass
class Procs:
    """Runs the ``samverka`` console (``python -m samverka``) in subprocesses; every
    long-running one is stopped at teardown, even when the test failed."""

    tmp: Path
    env: dict[str, str]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> Completed:
        proc = subprocess.run(
            [sys.executable, "-m", "samverka", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.tmp,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        result = Completed(proc.returncode, proc.stdout, proc.stderr, args)
        if check and proc.returncode != 0:
            raise AssertionError(f"samverka {' '.join(args)} failed:\n{result}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def run_here(self, *args: str, check: bool = True) -> Completed:
        """``samverka ARGS`` as :meth:`run` runs it (the root command, the processes'
        SAMVERKA_* environment) but in this process through click's CliRunner: a process
        start less (~1.2 s each here), for the steps around what a test is about; the
        commands a test is about stay ``samverka`` processes."""
        from click.testing import CliRunner
        from samverka.cli import main

        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SAMVERKA_")}
        env |= {k: v for k, v in self.env.items() if k.startswith("SAMVERKA_")}
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        done = Completed(result.exit_code, result.stdout, result.stderr, args)
        if check and done.returncode != 0:
            raise AssertionError(f"samverka {' '.join(args)} failed (in this process):\n{done}")
        return done

    def json_here(self, *args: str) -> Any:
        """:meth:`run_here` with ``--json``, parsed."""
        return json.loads(self.run_here(*args, "--json").stdout)

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        with (
            open(self.tmp / f"{name}.out", "wb") as out,
            open(self.tmp / f"{name}.err", "wb") as err,
        ):
            proc = subprocess.Popen(
                [sys.executable, "-m", "samverka", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.tmp,
            )
        self.started.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.err").read_text(encoding="utf-8", errors="replace")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class RunningHub:
    dir: Path
    member: str
    public: str
    proc: subprocess.Popen[bytes]

    @property
    def ca(self) -> Path:
        return self.dir / "tls" / "ca.pem"


def start_hub(procs: Procs, hub_dir: Path, *, name: str = "hub") -> RunningHub:
    """``hub init`` (if needed) and ``hub serve`` on free loopback ports."""
    if not (hub_dir / "samverka.toml").exists():
        procs.run(
            "hub", "init", "--dir", str(hub_dir),
            "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
        )  # fmt: skip
    return launch_hub(procs, hub_dir, name=name)()


def launch_hub(procs: Procs, hub_dir: Path, *, name: str = "hub") -> Callable[[], RunningHub]:
    """Start ``hub serve`` on an initialized folder; return the wait until it listens
    (the address file it writes), so several can start before any is waited for."""
    address_file = procs.tmp / f"{name}.addresses"
    address_file.unlink(missing_ok=True)
    proc = procs.start(
        "hub", "serve", "--dir", str(hub_dir), "--address-file", str(address_file),
        name=name,
    )  # fmt: skip

    def ready() -> dict[str, str] | None:
        if proc.poll() is not None:
            raise AssertionError(f"hub serve exited {proc.returncode}:\n{procs.log(name)}")
        return json.loads(address_file.read_text()) if address_file.exists() else None

    def listening() -> RunningHub:
        bound = wait_for(ready, 30, f"hub serve ({name}) to listen")
        return RunningHub(hub_dir, bound["member"], bound["public"], proc)

    return listening


def hub_env(**settings: str) -> dict[str, str]:
    """The environment of a test's hub processes: none of the SAMVERKA_* settings of the
    person running the tests; the directory polled every 0.1 s; no metrics port (several
    hubs on one host); checkpoints taken uncosigned (no node here witnesses the hub's log;
    what sync takes from the hub is still proven in its log; witnessing has tests of its
    own); then ``settings`` (SAMVERKA_NAME=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}
    env |= {
        "SAMVERKA_DIRECTORY_POLL_SECONDS": "0.1",
        "SAMVERKA_METRICS_LISTEN": "",
        "SAMVERKA_WITNESS_QUORUM": "0",
    }
    return env | settings


def init_replicas(procs: Procs, store_url: str) -> tuple[Path, Path]:
    """Two replicas of one hub on the database ``store_url``: ``hub init --store-url`` at
    ``hub-a`` and a copy of that folder (same keys, CA and configuration) at ``hub-b``, as
    an operator sets up a second host. Their folders."""
    a_dir, b_dir = procs.tmp / "hub-a", procs.tmp / "hub-b"
    procs.run(
        "hub", "init", "--dir", str(a_dir), "--store-url", store_url,
        "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
    )  # fmt: skip
    shutil.copytree(a_dir, b_dir)
    return a_dir, b_dir


def start_replicas(procs: Procs, store_url: str) -> tuple[RunningHub, RunningHub]:
    """:func:`init_replicas`, both served (``replica-a``, ``replica-b``) on free ports."""
    a_dir, b_dir = init_replicas(procs, store_url)
    return start_hub(procs, a_dir, name="replica-a"), start_hub(procs, b_dir, name="replica-b")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
