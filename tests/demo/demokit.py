"""Helpers for the demo's tests (``import demokit``): run ``python -m samverka_hub.demo``
for real, and find the processes it started.

The demo's folder is put under the test's ``tmp_path`` (through ``TMPDIR``, or
``DEMO_KEEP``), and every server it starts names that folder on its command line, so
"the processes the demo started" are exactly the processes whose command line
mentions ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import tlogcheck
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def processes_naming(path: Path) -> dict[int, str]:
    """pid → command line of every process whose command line contains ``path``."""
    needle = str(path).encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if needle in cmdline:
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def wait_gone(path: Path, timeout: float) -> dict[int, str]:
    """Wait until no process names ``path``; return those still there at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_naming(path)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@dataclass
class DemoRun:
    """A finished run of the demo."""

    returncode: int
    output: str
    seconds: float


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMVERKA_", "DEMO_"))}
    env["TMPDIR"] = str(tmp_path)  # the demo's temporary folder goes under tmp_path
    env.update(extra)
    return env


def run_demo(tmp_path: Path, timeout: float = 240, **env: str) -> DemoRun:
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "samverka_hub.demo"],
        capture_output=True,
        text=True,
        env=demo_env(tmp_path, **env),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    return DemoRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - began)


def start_demo(tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start the demo in the background, its output going to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "samverka_hub.demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=demo_env(tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )


def wait_for_output(log: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """Wait until the demo's output matches ``pattern``; its output so far."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(encoding="utf-8", errors="replace")
        if re.search(pattern, text, re.MULTILINE):
            return text
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited {proc.returncode} early:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in the demo's output after {timeout} s:\n{text}")
        time.sleep(0.1)


def cosigned_checkpoint(url: str, kept: Path) -> tlogcheck.SignedCheckpoint:
    """The log's checkpoint at ``url``, verified by tests/tlogcheck.py (written from the
    C2SP texts, none of the project's code): the log key from /log/key, each kommun's
    witness key built here from its node folder's keys/signing.pub."""
    with urllib.request.urlopen(url.replace("/checkpoint", "/key"), timeout=10) as reply:
        log_key = tlogcheck.parse_vkey(reply.read().decode().strip())
    witnesses = []
    for folder in kept.iterdir():
        pem = folder / "keys" / "signing.pub"
        code_file = folder / "samverka.toml"
        if not pem.exists() or not code_file.exists():
            continue
        code = re.search(r'kommun\s*=\s*"(\d{4})"', code_file.read_text(encoding="utf-8"))
        if code is None:
            continue
        public = load_pem_public_key(pem.read_bytes()).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        name = f"samverka-witness/{code.group(1)}"
        material = b"\x04" + public
        key_id = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
        witnesses.append(tlogcheck.VKey(name, key_id, 4, public))
    with urllib.request.urlopen(url, timeout=10) as reply:
        return tlogcheck.verify_checkpoint(reply.read(), log_key, witnesses)


def refused(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except OSError:
        return True


def addresses_in(output: str) -> list[str]:
    return sorted(set(re.findall(r"127\.0\.0\.1:\d+", output)))
