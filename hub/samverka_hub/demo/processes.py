"""The demo's servers: real ``samverka hub serve`` and ``samverka node serve`` processes.

Every server runs in a session of its own (its own process group), so a Ctrl-C in
the terminal reaches only the demo, which then stops the servers itself; its output
goes to ``logs/<name>.log`` in the demo folder. :meth:`Servers.stop` sends SIGTERM to
every group at once, waits, and sends SIGKILL to whatever is left after a timeout.

Servers meant to die with the demo are started through :mod:`samverka_hub.demo.guard`
(Linux), so the kernel stops them even if the demo itself is killed outright. Servers
meant to outlive it (``DEMO_KEEP``) are not, and :meth:`Servers.write_stop_script`
writes a ``stop.sh`` that stops them later by process group, touching only processes
whose command line still names the demo folder (a reused pid is left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samverka.errors import SamverkaError

#: How long a stopping server may take before it is killed (its drain is shorter).
STOP_TIMEOUT = 10.0


class DemoError(SamverkaError):
    """A step of the demo did not happen as it should."""


@dataclass
class Server:
    """One running server process."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class Stopped:
    servers: int
    seconds: float
    #: Names of servers that had to be killed (did not stop on SIGTERM in time).
    killed: tuple[str, ...]


@dataclass
class Servers:
    """The servers the demo started; ``stop()`` ends every one of them."""

    folder: Path
    #: Environment for every server (variables it adds per server go on top).
    env: Mapping[str, str]
    #: False: each server dies with the demo (the guard); True: servers outlive it.
    outlive_demo: bool = False
    started: list[Server] = field(default_factory=list)

    def start(
        self, name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Server:
        """Start ``samverka ARGS…`` as ``name``; its output goes to logs/<name>.log."""
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        log = logs / f"{name}.log"
        command = [sys.executable, "-m", "samverka", *args]
        if not self.outlive_demo and sys.platform.startswith("linux"):
            guard = [sys.executable, "-m", "samverka_hub.demo.guard", str(os.getpid()), "--"]
            command = guard + command
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env, **(env or {})},
                cwd=self.folder,
                start_new_session=True,
            )
        server = Server(name, proc, log)
        self.started.append(server)
        return server

    def wait_for_address(self, server: Server, path: Path, *, timeout: float = 30.0) -> Any:
        """Wait until ``server`` writes its address file (JSON or one line); return it."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if server.proc.poll() is not None:
                raise DemoError(
                    f"{server.name} exited with status {server.proc.returncode} before "
                    f"serving; the end of {server.log}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{server.name} did not start serving within {timeout:.0f} s; "
                    f"the end of {server.log}:\n{server.log_tail()}"
                )
            time.sleep(0.05)
        text = path.read_text(encoding="utf-8").strip()
        return json.loads(text) if text.startswith("{") else text

    def check_running(self) -> None:
        """Raise DemoError naming any server that has exited."""
        for server in self.started:
            if server.proc.poll() is not None:
                raise DemoError(
                    f"{server.name} exited with status {server.proc.returncode}; the end of "
                    f"{server.log}:\n{server.log_tail()}"
                )

    def stop(self, timeout: float = STOP_TIMEOUT) -> Stopped:
        """SIGTERM to every server's process group, then SIGKILL after ``timeout``."""
        begun = time.monotonic()
        running = [s for s in self.started if s.proc.poll() is None]
        for server in running:
            _signal_group(server.proc, signal.SIGTERM)
        deadline = begun + timeout
        killed: list[str] = []
        for server in running:
            try:
                server.proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                _signal_group(server.proc, signal.SIGKILL)
                server.proc.wait()
                killed.append(server.name)
        return Stopped(len(running), time.monotonic() - begun, tuple(killed))

    def write_stop_script(self, path: Path) -> None:
        """A POSIX shell script that stops the running servers (for ``DEMO_KEEP``)."""
        folder = str(self.folder)
        pids = " ".join(str(s.pid) for s in self.started if s.proc.poll() is None)
        path.write_text(
            _STOP_SCRIPT.format(folder=shlex.quote(folder), pids=pids, seconds=int(STOP_TIMEOUT)),
            encoding="utf-8",
        )
        path.chmod(0o755)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group ``proc`` leads (it was started in a new session).

    Only called while ``proc`` is not yet reaped, so its pid (and group) is still ours.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
        os.killpg(proc.pid, sig)


_STOP_SCRIPT = """\
#!/bin/sh
# Stops the Samverka demo's servers (the hub and the nodes) started in {folder}:
# SIGTERM to each server's process group, then SIGKILL after {seconds} s. Only processes
# whose command line still names a folder inside the demo folder are touched.
dir={folder}
pids="{pids}"
cmdline() {{
  if [ -r "/proc/$1/cmdline" ]; then tr '\\0' ' ' < "/proc/$1/cmdline"
  else ps -ww -o args= -p "$1"; fi
}}
alive() {{ cmdline "$1" 2>/dev/null | grep -qF -- "$dir/"; }}
for pid in $pids; do alive "$pid" && kill -TERM -"$pid" 2>/dev/null; done
i=0
while [ "$i" -lt {ticks} ]; do
  left=""
  for pid in $pids; do alive "$pid" && left="$left $pid"; done
  if [ -z "$left" ]; then echo "stopped the Samverka demo's servers"; exit 0; fi
  sleep 0.1
  i=$((i + 1))
done
for pid in $left; do kill -KILL -"$pid" 2>/dev/null; done
echo "killed the servers that did not stop in {seconds} s:$left"
""".replace("{ticks}", str(int(STOP_TIMEOUT * 10)))
