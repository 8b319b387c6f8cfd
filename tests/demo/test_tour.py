"""The README's tour and the demo's printed suggestions tell the truth (issue 14, point 7):
against a ``DEMO_KEEP`` federation each command runs, as a person would type it, and
finds something. And ``DEMO_KEEP`` itself (moved here from test_demo.py so that one kept
demo serves both): the servers stay up after the demo exits, the log is cosigned after a
push, and the printed ``stop.sh`` stops them all (the module's first and last tests).

The README's tour has three blocks, run as Leksand (the node operator), the hub (the
council) and Gagnef (staff in a small kommun); its ``/var/lib/…`` folders become the
demo's. Commands that set up, start or change membership cannot run against a running
demo: each is named in :data:`NOT_RUN` with the reason, so a new README command must be
classified here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from demokit import addresses_in, cosigned_checkpoint, processes_naming, refused, run_demo

REPO = Path(__file__).resolve().parents[2]
SAMVERKA = [sys.executable, "-m", "samverka"]

#: README commands (their command words) not run against the demo, and why.
NOT_RUN = {
    "node init": "makes a new node folder",
    "import": "needs the kommun's own inventory file (tests/cli/test_import_cli.py runs it)",
    "node serve": "a server: the demo's nodes serve already",
    "node enroll": "the demo's nodes are enrolled already",
    "node renew-cert": "replaces the node's TLS certificate",
    "node rotate-key": "replaces the node's signing key",
    "node backup": "tests/ops/test_backup.py",
    "node restore": "tests/ops/test_backup.py",
    "hub init": "makes a new hub folder",
    "hub serve": "a server: the demo's hub serves already",
    "hub web": "a server: the demo's hub serves the catalog already",
    "hub members pending": "lists enrollment requests: none wait in the demo",
    "hub members approve": "changes the membership",
    "hub members revoke": "changes the membership",
    "hub keys approve": "changes a member's keys",
    "hub recommend add": "publishes in the council's name (tests/hub runs it)",
    "hub harvest": "the demo's hub harvests Leksand already",
    "hub directory reissue": "only after restoring an older backup of the hub",
    "usecase erase": "erases a record everywhere (tests/cli/test_erase_cli.py runs it)",
    "hub erase": "erases in the council's name (tests/hub/test_erasure_e2e.py runs it)",
}
#: Commands whose healthy answer is that there is nothing to report.
NOTHING_IS_NEWS = {"hub refusals"}
#: How an empty answer starts (English and Swedish).
EMPTY = re.compile(r"\A\s*(nothing found|no \w+|inga \w+|\[\])", re.I)


def words_of(argv: list[str]) -> str:
    """The command words: ``samverka hub members approve 2029`` -> ``hub members approve``."""
    words = []
    for word in argv:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return " ".join(words)


def tour_blocks() -> list[list[str]]:
    """The command lines of each code block of "A tour of the CLI" (continuations joined)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    tour = text.split("## A tour of the CLI", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", tour, re.S):
        lines: list[str] = []
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.strip()
            if line.startswith(("samverka ", "export ")):
                lines.append(line)
        blocks.append(lines)
    return blocks


Done = subprocess.CompletedProcess[str]


def run_line(line: str, env: dict[str, str], cwd: Path) -> tuple[str, Done]:
    argv = shlex.split(line, comments=True)
    assert argv[0] == "samverka", line
    began = time.monotonic()
    done = subprocess.run(
        [*SAMVERKA, *argv[1:]], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"{time.monotonic() - began:5.1f} s  {line}")
    return words_of(argv[1:]), done


def check_found(words: str, line: str, done: Done) -> None:
    said = f"`{line}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, said
    assert done.stdout.strip(), said
    if words not in NOTHING_IS_NEWS:
        assert not EMPTY.match(done.stdout), f"`{line}` found nothing:\n{done.stdout}"
    assert "not held by this node" not in done.stderr, said  # adopt names a real record


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A DEMO_KEEP federation (its folder, the demo's output), stopped afterwards."""
    tmp = tmp_path_factory.mktemp("tour")
    keep = tmp / "kept"
    run = run_demo(tmp, DEMO_KEEP=str(keep))
    try:
        assert run.returncode == 0, run.output
        yield keep, run.output
    finally:
        stop = keep / "stop.sh"
        if stop.exists():
            subprocess.run(["sh", str(stop)], capture_output=True, timeout=60)
        assert processes_naming(keep) == {}


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMVERKA_", "DEMO_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.mark.timeout(300)  # the demo runs in the fixture's setup
def test_demo_keep_leaves_servers_up_and_the_log_cosigned(kept: tuple[Path, str]) -> None:
    keep, out = kept
    web = re.search(r"web catalog\s+(http://127\.0\.0\.1:\d+/)", out)
    assert web and re.search(r"stop them\s+(sh \S+)", out), out
    assert f"export SAMVERKA_DIR={keep / 'gagnef'}" in out
    # Still serving after the demo exited: the hub (with its web catalog) and three nodes.
    running = processes_naming(keep)
    assert len(running) == 4, running
    with urllib.request.urlopen(web.group(1) + "api/records?q=Copilot", timeout=10) as reply:
        assert b"Pilot med Microsoft 365 Copilot" in reply.read()
    addresses = addresses_in(out)
    assert not any(refused(a) for a in addresses), addresses
    # The log's URL: its checkpoint is cosigned by at least two kommuner a few seconds
    # after a push (checked with the independent verifier, keys from the node folders).
    log_url = re.search(r"the log\s+(http://127\.0\.0\.1:\d+/log/checkpoint)", out)
    assert log_url, out
    before = cosigned_checkpoint(log_url.group(1), keep)
    pushed = subprocess.run(
        [*SAMVERKA, "usecase", "add", "--dir", str(keep / "gagnef"), "--title",
         "Tolktjänst med taligenkänning", "--summary", "Pilot i mottagningen.",
         "--area", "it", "--status", "idea", "--visibility", "public"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    synced = subprocess.run(
        [*SAMVERKA, "sync", "--dir", str(keep / "gagnef")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stdout + synced.stderr
    began = time.monotonic()
    while True:
        after = cosigned_checkpoint(log_url.group(1), keep)
        if after.size > before.size and len(after.cosigners) >= 2:
            break
        assert time.monotonic() - began < 10, (before, after)
        time.sleep(0.2)


@pytest.mark.timeout(600)  # the demo (about 40 s), then some 20 commands
def test_every_command_of_the_readme_tour_finds_something(
    kept: tuple[Path, str], tmp_path: Path
) -> None:
    keep, _ = kept
    blocks = tour_blocks()
    assert len(blocks) == 3, blocks  # operator, council, staff
    # What a kommun would have been sent: Tibro's bundle and its public key.
    tibro = keep / "tibro"
    subprocess.run(
        [*SAMVERKA, "bundle", "export", "--out", str(tmp_path / "tibro.samverka"),
         "--dir", str(tibro)], check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "tibro-signing.pub").write_bytes((tibro / "keys" / "signing.pub").read_bytes())
    (tmp_path / "rad.md").write_text("Dela det som fungerar.\n", encoding="utf-8")

    ran: list[str] = []
    for folder, block in zip(("leksand", "hub", "gagnef"), blocks, strict=True):
        env = {**base_env(), "SAMVERKA_DIR": str(keep / folder)}
        for line in block:
            line = line.replace("/var/lib/samverka-hub", str(keep / "hub"))
            line = line.replace("/var/lib/samverka", str(keep / folder))
            if line.startswith("export "):
                continue  # SAMVERKA_DIR is set for the block
            argv = shlex.split(line, comments=True)
            words = words_of(argv[1:])
            if words in NOT_RUN:
                continue
            words, done = run_line(line, env, tmp_path)
            check_found(words, line, done)
            ran.append(words)
    assert len(ran) >= 15, ran
    staff = set(ran)
    for needed in ("search", "solution list", "usecase show", "adopt", "bundle import"):
        assert needed in staff, ran


@pytest.mark.timeout(300)
def test_every_command_the_demo_suggests_finds_something(
    kept: tuple[Path, str], tmp_path: Path
) -> None:
    _, output = kept
    suggested = output.split("Try, as Gagnef:", 1)[1].split("\nDone in", 1)[0]
    env = base_env()
    ran = 0
    for raw in suggested.splitlines():
        line = raw.strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.replace("$PATH", env.get("PATH", ""))
            continue
        for part in line.split(" && ") if line.startswith("samverka ") else []:
            words, done = run_line(part, env, tmp_path)
            check_found(words, part, done)
            ran += 1
    assert ran >= 7, suggested
    assert '--title "…"' not in suggested and "--visibility public" not in suggested


def test_demo_keep_stop_sh_stops_every_server(kept: tuple[Path, str]) -> None:
    """Last in the module: the printed stop command stops them all."""
    keep, out = kept
    stop = re.search(r"stop them\s+(sh \S+)", out)
    assert stop, out
    addresses = addresses_in(out)
    assert addresses
    stopped = subprocess.run(stop.group(1).split(), capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped" in stopped.stdout
    assert processes_naming(keep) == {}
    assert all(refused(a) for a in addresses), addresses
    assert (keep / "gagnef" / "samverka.db").exists()  # the folder stays for exploring
