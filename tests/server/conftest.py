"""Fixtures for the server tests: real node folders, real processes, real mutual TLS.

- ``node``: a node folder made by ``init_node`` (Leksand, local CA) holding the small
  feed ``serverkit.FEED`` (every visibility, several kinds and tags), written by the
  node's own publisher.
- ``pki``: reader certificates as files — a member (Tibro) issued by the node's CA,
  and one from a foreign CA.
- ``processes`` / ``start_server``: separate processes; ``start_server`` runs
  ``python -m samverka node serve --listen HOST:0 --address-file F`` and returns the
  bound address. Every process a test starts is stopped at the end, even on failure.

Helpers (``run``, ``wait_for``, ``publish``) are in ``serverkit.py`` next to this file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from samverka.node import LOCAL_CA_KEY, Node, init_node
from samverka.transport.pki import CertKeyPair, create_ca, issue_certificate

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import serverkit`

import serverkit
from serverkit import FEED, LEKSAND, TIBRO, Pki, Processes, ServerProcess


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    opened = init_node(tmp_path / "leksand", LEKSAND)
    for item in FEED:
        serverkit.publish(opened, *item)
    yield opened
    opened.close()


def _write(folder: Path, name: str, pair: CertKeyPair) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return cert, key


@pytest.fixture
def pki(node: Node, tmp_path: Path) -> Pki:
    folder = tmp_path / "reader-tls"
    folder.mkdir()
    ca_pem = (node.dir / "tls" / "ca.pem").read_bytes()
    node_ca = CertKeyPair(ca_pem, (node.dir / LOCAL_CA_KEY).read_bytes())
    member = _write(folder, "member", issue_certificate(node_ca, kommunkod=TIBRO, name="Tibro"))
    foreign = _write(folder, "foreign", issue_certificate(create_ca("Other CA"), kommunkod=TIBRO))
    (folder / "ca.pem").write_bytes(ca_pem)
    return Pki(folder / "ca.pem", *member, *foreign)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def start_server(processes: Processes, tmp_path: Path) -> Callable[..., ServerProcess]:
    """Start ``node serve`` for a folder; keyword ``server`` settings become
    SAMVERKA_SERVER_<KEY> variables, ``env`` is added to the environment as is."""
    counter = iter(range(1000))

    def start(
        node_dir: Path,
        host: str = "127.0.0.1",
        port: int | str = 0,
        env: dict[str, str] | None = None,
        **server: str,
    ) -> ServerProcess:
        name = f"server{next(counter)}"
        address_file = tmp_path / f"{name}.addr"
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        proc = processes.python(
            "-m",
            "samverka",
            "node",
            "serve",
            "--dir",
            str(node_dir),
            "--listen",
            listen,
            "--address-file",
            str(address_file),
            name=name,
            env={**(env or {}), **{f"SAMVERKA_SERVER_{k.upper()}": v for k, v in server.items()}},
        )

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{processes.errors(name)}")
            return address_file.exists()

        serverkit.wait_for(ready, 30, "the server to listen")
        address = address_file.read_text(encoding="utf-8").strip()
        return ServerProcess(proc, address, tmp_path / f"{name}.stderr")

    return start
