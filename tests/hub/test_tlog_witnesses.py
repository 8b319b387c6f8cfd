"""The transparency log's gRPC face and the witnesses' cosignatures at the hub (issue 11).

A real ``hub serve`` process (SQLite; members admitted in-process by the council's own
API, tests/attacks/arena.py), called over gRPC with mutual TLS as its members, and over
server TLS on the public port as anyone. What comes back is checked by
tests/tlogcheck.py, the independent verifier (RFC 9162, C2SP; no samverka imports):
checkpoint signatures and cosignatures, inclusion proofs of entries and directory
versions, a consistency proof between two checkpoints. Cosignatures are made as a
node's witness makes them (samverka.protocol.witness), and forged ones in every way a
member could try; the table is read directly to show that a refused one is not kept.

The last test runs two replicas on one PostgreSQL: a cosignature handed to one is
served by the other.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import tlogcheck
from samverka.protocol.checkpoint import Checkpoint
from samverka.protocol.note import (
    CosignatureV1Signer,
    Ed25519Signer,
    NoteSignature,
    parse_note,
    sign_note,
)
from samverka.protocol.witness import witness_key_name, witness_signer, witness_verifiers
from samverka.transport.client import ClientTls, open_channel
from samverka.transport.server.status import PeerError, from_rpc_error
from samverka.v1 import hub_service_pb2, hub_service_pb2_grpc
from samverka_hub.cosigned import IN_PROGRESS_MS
from samverka_hub.tlog import LOG_KEY_FILE, LOG_VKEY_FILE

sys.path.insert(0, str(Path(__file__).parent.parent / "attacks"))

import arena
from arena import FALUN, GAGNEF, LEKSAND, RATTVIK, TIBRO, MemberKeys

MEMBERS = (LEKSAND, TIBRO, GAGNEF, RATTVIK, FALUN)
WITNESSES = (LEKSAND, TIBRO, GAGNEF)


# -- the hub and calling it ---------------------------------------------------------------------


@dataclass
class LogHub:
    hub: arena.HubProcess
    members: dict[str, MemberKeys]
    web: str
    vkey: str
    writers: dict[str, Any] = field(default_factory=dict)

    @property
    def public_tls(self) -> ClientTls:
        return ClientTls(ca=self.hub.ca_pem)

    def call(self, method: str, request: Any, *, member: str | None = None) -> Any:
        """One HubService call: as ``member`` on the member port, else on the public port."""
        if member is None:
            return rpc(self.hub.public, self.public_tls, method, request)
        return rpc(self.hub.member, self.members[member].tls(), method, request)

    def refusal(self, method: str, request: Any, *, member: str | None = None) -> tuple[Any, str]:
        try:
            self.call(method, request, member=member)
        except PeerError as exc:
            return exc.code, exc.reason
        raise AssertionError(f"{method} was not refused")

    def push(self, code: str, count: int) -> None:
        writer = self.writers.get(code)
        if writer is None:
            with self.hub.open_store() as store:
                writer = self.writers[code] = arena.writer_at(store, self.members[code])
        items = [writer.publish(record_id=f"w-{code}-{writer.sequence + 1}") for _ in range(count)]
        for start in range(0, len(items), 200):
            outcome = arena.publish(
                self.hub.member, self.members[code], *items[start : start + 200]
            )
            assert outcome.ok, outcome

    def leaves_expected(self) -> int:
        with self.engine() as engine, engine.connect() as conn:
            version = conn.execute(sa.text("SELECT max(version) FROM hub_directories")).scalar()
            position = conn.execute(sa.text("SELECT max(position) FROM log")).scalar()
        return int(version or 0) + int(position or 0)

    def newest_size(self) -> int:
        with self.engine() as engine, engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(size) FROM hub_tlog_checkpoints")).scalar())

    def cosignature_rows(self) -> set[tuple[int, str, int]]:
        with self.engine() as engine, engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT size, kommunkod, timestamp FROM hub_tlog_cosignatures")
            ).all()
        return {(int(s), k, int(t)) for s, k, t in rows}

    def engine(self) -> Any:
        return _Engine(self.hub.url())

    def checkpoint(self, *, witness: str | None = None) -> bytes:
        request = hub_service_pb2.GetCheckpointRequest(for_witness=witness is not None)
        return bytes(self.call("GetCheckpoint", request, member=witness).checkpoint)

    def wait_for_size(self, size: int, timeout: float = 20) -> tlogcheck.SignedCheckpoint:
        deadline = time.monotonic() + timeout
        while True:
            cp = self.verify(self.checkpoint())
            if cp.size >= size:
                return cp
            if time.monotonic() > deadline:
                raise AssertionError(f"the log did not reach {size} leaves (at {cp.size})")
            time.sleep(0.1)

    def wait_for_newer_checkpoint(self, size: int, timeout: float = 20) -> int:
        """Wait until the log has signed a checkpoint larger than ``size``; its size."""
        deadline = time.monotonic() + timeout
        while (newest := self.newest_size()) <= size:
            assert time.monotonic() < deadline, f"no checkpoint newer than {size} was signed"
            time.sleep(0.05)
        return newest

    def wait_until_nothing_in_progress(self) -> None:
        """Wait until no checkpoint with a cosignature is still "in progress" (signed
        less than IN_PROGRESS_MS ago), so witnesses are steered by what happens next."""
        query = sa.text(
            "SELECT max(c.signed_at_ms) FROM hub_tlog_checkpoints c "
            "JOIN hub_tlog_cosignatures s ON s.size = c.size"
        )
        with self.engine() as engine, engine.connect() as conn:
            signed = conn.execute(query).scalar()
        if signed is not None:
            quiet_at = (int(signed) + IN_PROGRESS_MS) / 1000 + 0.2
            time.sleep(max(0.0, quiet_at - time.time()))

    def verify(self, raw: bytes, witnesses: Sequence[str] = ()) -> tlogcheck.SignedCheckpoint:
        keys = [tlogcheck.parse_vkey(witness_vkey(self.members[c])) for c in witnesses]
        return tlogcheck.verify_checkpoint(raw, tlogcheck.parse_vkey(self.vkey), keys)

    def add(self, member: str, note: bytes) -> int:
        request = hub_service_pb2.AddCosignatureRequest(checkpoint=note)
        return int(self.call("AddCosignature", request, member=member).cosignatures)

    def http(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.web}/log/{path}", timeout=10) as response:
            return bytes(response.read())


class _Engine:
    """A short-lived engine on the hub's database, read from the side."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def __enter__(self) -> sa.Engine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()


def rpc(address: str, tls: ClientTls, method: str, request: Any) -> Any:
    async def go() -> Any:
        channel = open_channel(address, tls)
        try:
            stub = hub_service_pb2_grpc.HubServiceStub(channel)
            return await getattr(stub, method)(request, timeout=20)
        except grpc.aio.AioRpcError as err:
            exc = from_rpc_error(err)
            if not isinstance(exc, PeerError):
                exc = PeerError(str(exc), code=err.code(), reason=str(exc.reason))
            raise exc from None
        finally:
            await channel.close()

    return arena.run(go())


def witness_vkey(member: MemberKeys) -> str:
    return witness_verifiers({member.code: [member.key.public.raw]})[0].vkey


def cosign(member: MemberKeys, note: bytes, signer: CosignatureV1Signer | None = None) -> bytes:
    """``note`` with ``member``'s cosignature added, as its node's witness makes it."""
    return sign_note(parse_note(note), signer or witness_signer(member.code, member.key))


def entry_leaf_by_hand(origin: str, sequence: int, signed_entry: bytes) -> bytes:
    """The log's entry leaf from the ARCHITECTURE text, without the project's code."""
    raw = origin.encode()
    digest = hashlib.sha256(signed_entry).digest()
    return b"\x01\x01" + sequence.to_bytes(8, "big") + bytes([len(raw)]) + raw + digest


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def start_log_hub(tmp: Path, *, store_url: str = "", name: str = "hub") -> LogHub:
    hub_dir = tmp / "hub"
    members = arena.build_hub(hub_dir, MEMBERS, store_url=store_url)
    web = f"127.0.0.1:{arena.free_port()}"
    hub = arena.serve_hub(
        hub_dir, tmp / "logs", name=name, store_url=store_url,
        SAMVERKA_WEB_ENABLED="true", SAMVERKA_WEB_LISTEN=web,
    )  # fmt: skip
    vkey = (hub_dir / LOG_VKEY_FILE).read_text().strip()
    return LogHub(hub, members, web, vkey)


@pytest.fixture(scope="module")
def loghub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogHub]:
    made = start_log_hub(tmp_path_factory.mktemp("tlog-witnesses"))
    try:
        yield made
    finally:
        code = made.hub.stop()
    assert code == 0, made.hub.log()[-3000:]


# -- proofs -------------------------------------------------------------------------------------


def test_proofs_verify_with_the_independent_verifier(loghub: LogHub) -> None:
    loghub.push(LEKSAND, 40)
    loghub.push(TIBRO, 40)
    first = loghub.wait_for_size(loghub.leaves_expected())
    raw_first = loghub.checkpoint()
    # The public port and the web port serve the same note; the member port too.
    assert loghub.http("checkpoint") == raw_first
    assert loghub.checkpoint(witness=None) == raw_first

    # Every entry pushed and every directory version, in one call, as anyone.
    entries = [(LEKSAND, e) for e in loghub.writers[LEKSAND].entries]
    entries += [(TIBRO, e) for e in loghub.writers[TIBRO].entries]
    with loghub.engine() as engine, engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version, digest FROM hub_directories")).all()
    queries = [
        hub_service_pb2.LeafQuery(origin=origin, sequence=i + 1)
        for origin, group in ((LEKSAND, 40), (TIBRO, 40))
        for i in range(group)
    ] + [hub_service_pb2.LeafQuery(directory_version=int(v)) for v, _ in versions]
    started = time.perf_counter()
    reply = loghub.call(
        "GetInclusionProofs",
        hub_service_pb2.GetInclusionProofsRequest(tree_size=first.size, leaves=queries),
    )
    elapsed = time.perf_counter() - started
    assert len(reply.proofs) == len(queries)
    for (origin, signed), proof in zip(entries, reply.proofs, strict=False):
        sequence = (loghub.writers[origin].entries.index(signed)) + 1
        assert proof.leaf == entry_leaf_by_hand(origin, sequence, signed.entry)
        assert tlogcheck.rfc_inclusion_ok(
            proof.leaf_index, first.size, leaf_hash(proof.leaf), list(proof.hashes), first.root
        )
    for (version, digest), proof in zip(versions, reply.proofs[len(entries) :], strict=True):
        assert proof.leaf == b"\x01\x02" + int(version).to_bytes(8, "big") + bytes(digest)
        assert tlogcheck.rfc_inclusion_ok(
            proof.leaf_index, first.size, leaf_hash(proof.leaf), list(proof.hashes), first.root
        )
    sizes = [len(p.hashes) * 32 for p in reply.proofs]
    print(
        f"\n{len(queries)} inclusion proofs in a tree of {first.size}: one call "
        f"{elapsed * 1000:.1f} ms, path {min(sizes)}..{max(sizes)} B, "
        f"reply {reply.ByteSize()} B"
    )
    # Every leaf of the tree asked at once: a combined proof needs no hash at all.
    every = loghub.call(
        "GetInclusionProofs",
        hub_service_pb2.GetInclusionProofsRequest(
            tree_size=first.size, leaves=queries, combined=True
        ),
    )
    assert [(p.leaf_index, p.leaf) for p in every.proofs] == [
        (p.leaf_index, p.leaf) for p in reply.proofs
    ]
    assert not any(p.hashes for p in every.proofs) and list(every.combined) == []
    # Leksand's 40 (a run, as a sync page is): one combined proof, the same leaves and
    # indexes, a tenth of the hashes or fewer; the independent checker takes it.
    together = loghub.call(
        "GetInclusionProofs",
        hub_service_pb2.GetInclusionProofsRequest(
            tree_size=first.size, leaves=queries[:40], combined=True
        ),
    )
    assert [(p.leaf_index, p.leaf) for p in together.proofs] == [
        (p.leaf_index, p.leaf) for p in reply.proofs[:40]
    ]
    assert not any(p.hashes for p in together.proofs)
    leaf_hashes = {p.leaf_index: leaf_hash(p.leaf) for p in together.proofs}
    assert tlogcheck.combined_inclusion_ok(
        first.size, leaf_hashes, list(together.combined), first.root
    )
    assert 0 < len(together.combined) <= sum(len(p.hashes) for p in reply.proofs[:40]) / 10
    # Tampered, it is refused: a hash changed, one left out, a leaf moved.
    flipped = [bytes([together.combined[0][0] ^ 1]) + together.combined[0][1:]]
    assert not tlogcheck.combined_inclusion_ok(
        first.size, leaf_hashes, flipped + list(together.combined[1:]), first.root
    )
    assert not tlogcheck.combined_inclusion_ok(
        first.size, leaf_hashes, list(together.combined[:-1]), first.root
    )
    last = max(leaf_hashes)
    free = next(i for i in range(first.size) if i not in leaf_hashes)
    moved = {i: h for i, h in leaf_hashes.items() if i != last} | {free: leaf_hashes[last]}
    assert not tlogcheck.combined_inclusion_ok(
        first.size, moved, list(together.combined), first.root
    )

    # More pushes, past a full tile: a consistency proof between the two checkpoints.
    loghub.push(LEKSAND, 300)
    second = loghub.wait_for_size(loghub.leaves_expected())
    assert second.size > 256 > first.size
    started = time.perf_counter()
    consistency = loghub.call(
        "GetConsistencyProof",
        hub_service_pb2.GetConsistencyProofRequest(old_size=first.size, new_size=second.size),
        member=TIBRO,
    )
    elapsed = time.perf_counter() - started
    assert tlogcheck.rfc_consistency_ok(
        first.size, second.size, first.root, second.root, list(consistency.hashes)
    )
    print(
        f"consistency {first.size} -> {second.size}: {len(consistency.hashes) * 32} B, "
        f"{elapsed * 1000:.1f} ms"
    )
    # Equal sizes and from 0: nothing to prove.
    for old, new in ((second.size, second.size), (0, second.size)):
        reply = loghub.call(
            "GetConsistencyProof",
            hub_service_pb2.GetConsistencyProofRequest(old_size=old, new_size=new),
        )
        assert list(reply.hashes) == []
    # An old leaf in the newer tree, asked on the member port.
    old = loghub.call(
        "GetInclusionProofs",
        hub_service_pb2.GetInclusionProofsRequest(tree_size=second.size, leaves=queries[:1]),
        member=GAGNEF,
    ).proofs[0]
    assert tlogcheck.rfc_inclusion_ok(
        old.leaf_index, second.size, leaf_hash(old.leaf), list(old.hashes), second.root
    )


def test_call_times_over_one_channel(loghub: LogHub) -> None:
    """Figures for the report: each call 50 times on one mutual-TLS channel."""
    loghub.push(LEKSAND, 1)
    loghub.wait_for_size(loghub.leaves_expected())
    size = loghub.newest_size()
    head = loghub.writers[LEKSAND].sequence
    leaves_1000 = [
        hub_service_pb2.LeafQuery(origin=LEKSAND, sequence=1 + i % head) for i in range(1000)
    ]

    async def measure() -> dict[str, float]:
        channel = open_channel(loghub.hub.member, loghub.members[TIBRO].tls())
        stub = hub_service_pb2_grpc.HubServiceStub(channel)
        calls = {
            "GetCheckpoint": lambda: stub.GetCheckpoint(hub_service_pb2.GetCheckpointRequest()),
            "GetCheckpoint(for_witness)": lambda: stub.GetCheckpoint(
                hub_service_pb2.GetCheckpointRequest(for_witness=True)
            ),
            "GetConsistencyProof": lambda: stub.GetConsistencyProof(
                hub_service_pb2.GetConsistencyProofRequest(old_size=size // 3, new_size=size)
            ),
            "GetInclusionProofs x1": lambda: stub.GetInclusionProofs(
                hub_service_pb2.GetInclusionProofsRequest(tree_size=size, leaves=leaves_1000[:1])
            ),
            "GetInclusionProofs x1000": lambda: stub.GetInclusionProofs(
                hub_service_pb2.GetInclusionProofsRequest(tree_size=size, leaves=leaves_1000)
            ),
        }
        out = {}
        try:
            for name, make in calls.items():
                await make()
                times = []
                for _ in range(20 if "1000" in name else 50):
                    t0 = time.perf_counter()
                    await make()
                    times.append(time.perf_counter() - t0)
                out[name] = statistics.median(times) * 1000
        finally:
            await channel.close()
        return out

    figures = arena.run(measure())
    print(
        "\nmedian call times (ms) at", size, "leaves:", {k: round(v, 2) for k, v in figures.items()}
    )
    assert figures["GetInclusionProofs x1000"] < 2000


# -- refusals -----------------------------------------------------------------------------------

OK_CODES = grpc.StatusCode


def test_precise_refusals_never_internal(loghub: LogHub) -> None:
    size = loghub.newest_size()
    proofs = "GetInclusionProofs"

    def inclusion(tree_size: int, *leaves: hub_service_pb2.LeafQuery) -> tuple[Any, str]:
        request = hub_service_pb2.GetInclusionProofsRequest(tree_size=tree_size, leaves=leaves)
        return loghub.refusal(proofs, request)

    entry = hub_service_pb2.LeafQuery(origin=LEKSAND, sequence=1)
    assert inclusion(size + 1, entry) == (OK_CODES.FAILED_PRECONDITION, "beyond_checkpoint")
    assert inclusion(size, hub_service_pb2.LeafQuery(origin=LEKSAND, sequence=10**9)) == (
        OK_CODES.NOT_FOUND, "not_in_tree",
    )  # fmt: skip
    # In the log, but not in a tree that small (directory version 1 is leaf 0).
    assert inclusion(1, entry) == (OK_CODES.NOT_FOUND, "not_in_tree")
    assert inclusion(size, hub_service_pb2.LeafQuery(directory_version=10**6)) == (
        OK_CODES.NOT_FOUND, "not_in_tree",
    )  # fmt: skip
    bad = [
        hub_service_pb2.LeafQuery(),
        hub_service_pb2.LeafQuery(origin="9999", sequence=1),
        hub_service_pb2.LeafQuery(origin=LEKSAND, sequence=0),
        hub_service_pb2.LeafQuery(origin=LEKSAND, sequence=1, directory_version=1),
        hub_service_pb2.LeafQuery(sequence=3),
    ]
    for query in bad:
        assert inclusion(size, query) == (OK_CODES.INVALID_ARGUMENT, "invalid_request"), query
    assert inclusion(size) == (OK_CODES.INVALID_ARGUMENT, "invalid_request")
    assert inclusion(0, entry) == (OK_CODES.INVALID_ARGUMENT, "invalid_request")
    # 1,001 leaves: counted on the wire, refused before decoding, on either port.
    many = [entry] * 1001
    assert inclusion(size, *many) == (OK_CODES.INVALID_ARGUMENT, "too_many_items")
    request = hub_service_pb2.GetInclusionProofsRequest(tree_size=size, leaves=many)
    assert loghub.refusal(proofs, request, member=LEKSAND) == (
        OK_CODES.INVALID_ARGUMENT, "too_many_items",
    )  # fmt: skip
    request = hub_service_pb2.GetInclusionProofsRequest(tree_size=size, leaves=many[:1000])
    assert len(loghub.call(proofs, request).proofs) == 1000

    consistency = "GetConsistencyProof"
    request_c = hub_service_pb2.GetConsistencyProofRequest
    assert loghub.refusal(consistency, request_c(old_size=5, new_size=4)) == (
        OK_CODES.INVALID_ARGUMENT, "invalid_request",
    )  # fmt: skip
    assert loghub.refusal(consistency, request_c(old_size=1, new_size=size + 1)) == (
        OK_CODES.FAILED_PRECONDITION, "beyond_checkpoint",
    )  # fmt: skip

    # Members only: a witness's checkpoint and cosignatures, objections.
    note = loghub.checkpoint()
    public_refusals = [
        ("GetCheckpoint", hub_service_pb2.GetCheckpointRequest(for_witness=True)),
        ("AddCosignature", hub_service_pb2.AddCosignatureRequest(checkpoint=note)),
        ("ObjectToKey", hub_service_pb2.ObjectToKeyRequest()),
    ]
    for method, req in public_refusals:
        code, _ = loghub.refusal(method, req)
        # ObjectToKey is membership_service's: no certificate, UNAUTHENTICATED.
        assert code in (OK_CODES.PERMISSION_DENIED, OK_CODES.UNAUTHENTICATED), method
        assert code is OK_CODES.PERMISSION_DENIED or method == "ObjectToKey", method


# -- cosignatures -------------------------------------------------------------------------------


def test_forged_cosignatures_are_refused_and_not_kept(loghub: LogHub) -> None:
    leksand, tibro = loghub.members[LEKSAND], loghub.members[TIBRO]
    note = loghub.checkpoint(witness=LEKSAND)
    text = parse_note(note).text
    good = cosign(leksand, note)
    line = next(s for s in parse_note(good).unverified if s.name == witness_key_name(LEKSAND))

    def flipped(sig: NoteSignature, at: int) -> bytes:
        raw = bytearray(sig.signature)
        raw[at] ^= 0x01
        return _with_line(note, NoteSignature(sig.name, sig.key_hash, bytes(raw)))

    log_signer = Ed25519Signer.from_skey(
        (loghub.hub.dir / LOG_KEY_FILE).read_text().strip()
    )  # the hub's own key: a checkpoint it never served
    cp = Checkpoint.from_text(text)
    other_root = sign_note(Checkpoint(cp.origin, cp.size, bytes(32)).to_text(), log_signer)
    impostor_log = Ed25519Signer.generate(log_signer.name)
    now = int(time.time())
    cases = {
        "another key in its own name": (
            cosign(leksand, note, CosignatureV1Signer.generate(witness_key_name(LEKSAND))),
            "unknown_witness_key",
        ),
        "its key under a wrong name": (
            cosign(leksand, note, witness_signer(LEKSAND + "x", leksand.key)),
            "no_cosignature",
        ),
        "its key in another member's name": (
            cosign(leksand, note, witness_signer(TIBRO, leksand.key)),
            "no_cosignature",
        ),
        "another member's genuine cosignature, relayed": (cosign(tibro, note), "no_cosignature"),
        "a bit flipped in the signature": (flipped(line, 40), "forged_cosignature"),
        "a bit flipped in the timestamp": (flipped(line, 7), "forged_cosignature"),
        "a checkpoint the log never signed at that size": (
            cosign(leksand, other_root),
            "unknown_checkpoint",
        ),
        "a checkpoint signed by another key of the log's name": (
            cosign(leksand, sign_note(text, impostor_log)),
            "not_signed_by_log",
        ),
        "no log signature at all": (
            sign_note(text, witness_signer(LEKSAND, leksand.key)),
            "not_signed_by_log",
        ),
        "a timestamp an hour ahead": (
            cosign(leksand, note, witness_signer(LEKSAND, leksand.key, clock=lambda: now + 3600)),
            "cosignature_in_future",
        ),
        "not a note": (b"junk", "malformed_note"),
    }
    before = loghub.cosignature_rows()
    for name, (forged, reason) in cases.items():
        request = hub_service_pb2.AddCosignatureRequest(checkpoint=forged)
        got = loghub.refusal("AddCosignature", request, member=LEKSAND)
        assert got == (OK_CODES.INVALID_ARGUMENT, reason), name
        assert loghub.cosignature_rows() == before, f"{name}: a refused cosignature was kept"
    # The genuine one is kept (once per checkpoint and kommun; a newer timestamp replaces).
    assert loghub.add(LEKSAND, good) >= 1
    after = loghub.cosignature_rows()
    assert len(after - before) == 1
    ((size, code, _),) = after - before
    assert (size, code) == (cp.size, LEKSAND)
    later = witness_signer(LEKSAND, leksand.key, clock=lambda: now + 60)
    loghub.add(LEKSAND, cosign(leksand, note, later))
    assert (cp.size, LEKSAND, now + 60) in loghub.cosignature_rows()
    loghub.add(LEKSAND, good)  # older than the one held: changes nothing
    assert (cp.size, LEKSAND, now + 60) in loghub.cosignature_rows()


def _with_line(note: bytes, sig: NoteSignature) -> bytes:
    return note + (sig.line + "\n").encode()


def test_witnesses_converge_on_one_checkpoint_under_a_push_load(loghub: LogHub) -> None:
    """Witnesses asking at different times while pushes keep arriving get the same
    checkpoint, until it has the target's cosignatures; then everyone is served it."""
    loghub.wait_until_nothing_in_progress()  # what earlier tests cosigned
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        try:
            while not stop.is_set():
                loghub.push(FALUN, 1)
                time.sleep(0.05)
        except BaseException as exc:
            failures.append(exc)

    pusher = threading.Thread(target=load, daemon=True)
    pusher.start()
    try:
        # The load under way: the log signs checkpoints past the one before it started.
        loghub.wait_for_newer_checkpoint(loghub.newest_size())
        started = time.monotonic()
        asked = []
        for code in WITNESSES:
            note = loghub.checkpoint(witness=code)
            asked.append((code, note, loghub.newest_size()))
            count = loghub.add(code, cosign(loghub.members[code], note))
            if code != WITNESSES[-1]:  # the next asks once the log signed a newer one
                loghub.wait_for_newer_checkpoint(loghub.verify(note).size)
        gathered = time.monotonic() - started
        sizes = {loghub.verify(n).size for _, n, _ in asked}
        assert len(sizes) == 1, f"the witnesses were handed different checkpoints: {sizes}"
        (size,) = sizes
        # ... while the log had moved on (the steering is what made them agree).
        assert max(newest for _, _, newest in asked) > size
        assert count == 3
        # Cosignatures of smaller checkpoints are gone: they will never be served.
        assert min(s for s, _, _ in loghub.cosignature_rows()) >= size
        served = loghub.checkpoint()
        cp = loghub.verify(served, WITNESSES)
        assert cp.size == size and set(cp.cosigners) == {witness_key_name(c) for c in WITNESSES}
        assert loghub.http("checkpoint") == served
        # The next witness to ask is sent to a newer checkpoint.
        assert loghub.verify(loghub.checkpoint(witness=LEKSAND)).size > size

        # Witness loops at their own pace: checkpoints keep getting cosigned by all three.
        done = threading.Event()
        cosigned_sizes: set[int] = set()

        def witness(code: str, period: float) -> None:
            try:
                while not done.is_set():
                    n = loghub.checkpoint(witness=code)
                    if loghub.add(code, cosign(loghub.members[code], n)) >= 3:
                        cosigned_sizes.add(loghub.verify(n).size)
                    time.sleep(period)
            except BaseException as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=witness, args=(code, period), daemon=True)
            for code, period in zip(WITNESSES, (0.5, 0.7, 1.1), strict=True)
        ]
        looped = time.monotonic()
        for t in threads:
            t.start()
        # Until two checkpoints reached 3 cosignatures (30 s at most; it used to watch 8 s).
        deadline = looped + 30
        while len(cosigned_sizes) < 2 and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
        looped = time.monotonic() - looped
        done.set()
        for t in threads:
            t.join(10)
        lag = loghub.newest_size() - loghub.verify(loghub.checkpoint()).size
        print(
            f"\nunder ~20 pushes/s: first checkpoint cosigned by 3 in {gathered:.1f} s; "
            f"in {looped:.1f} s of witness loops (0.5/0.7/1.1 s) {len(cosigned_sizes)} "
            f"checkpoints reached 3 cosignatures; served checkpoint {lag} leaves behind "
            "the newest"
        )
        assert len(cosigned_sizes) >= 2
    finally:
        stop.set()
        pusher.join(10)
    assert not failures, failures


def test_a_revoked_member_cannot_cosign(loghub: LogHub) -> None:
    rattvik = loghub.members[RATTVIK]
    note = loghub.checkpoint(witness=RATTVIK)
    size = loghub.verify(note).size
    assert loghub.add(RATTVIK, cosign(rattvik, note)) >= 1
    arena.revoke(loghub.hub.dir, RATTVIK)
    deadline = time.monotonic() + 10
    while True:
        later = witness_signer(RATTVIK, rattvik.key, clock=lambda: int(time.time()) + 1)
        request = hub_service_pb2.AddCosignatureRequest(checkpoint=cosign(rattvik, note, later))
        try:
            loghub.call("AddCosignature", request, member=RATTVIK)
        except PeerError as exc:
            assert exc.code is OK_CODES.PERMISSION_DENIED, exc
            break
        assert time.monotonic() < deadline, "a revoked member's cosignature was still taken"
        time.sleep(0.2)
    # Its earlier cosignature no longer counts, nor is it served.
    before = {r for r in loghub.cosignature_rows() if r[:2] == (size, RATTVIK)}
    count = loghub.add(LEKSAND, cosign(loghub.members[LEKSAND], note))
    rows = loghub.cosignature_rows()
    assert count == len({k for s, k, _ in rows if s == size and k != RATTVIK})
    assert {r for r in rows if r[:2] == (size, RATTVIK)} == before


# -- replicas -----------------------------------------------------------------------------------


def test_a_cosignature_handed_to_one_replica_is_served_by_the_other(
    tmp_path: Path, pg_url: str
) -> None:
    a = start_log_hub(tmp_path / "a", store_url=pg_url, name="replica-a")
    try:
        shutil.copytree(a.hub.dir, tmp_path / "b" / "hub")
        b_hub = arena.serve_hub(
            tmp_path / "b" / "hub", tmp_path / "b" / "logs", name="replica-b", store_url=pg_url
        )
        try:
            b = LogHub(b_hub, a.members, a.web, a.vkey)
            a.push(LEKSAND, 5)
            a.wait_for_size(a.leaves_expected())
            note = b.checkpoint(witness=TIBRO)
            assert a.checkpoint(witness=TIBRO) == note  # one log, one database
            assert a.add(TIBRO, cosign(a.members[TIBRO], note)) == 1
            assert b.add(GAGNEF, cosign(a.members[GAGNEF], b.checkpoint(witness=GAGNEF))) == 2
            assert a.add(LEKSAND, cosign(a.members[LEKSAND], a.checkpoint(witness=LEKSAND))) == 3
            time.sleep(0.3)  # a replica rereads the cosignatures after 0.2 s at most
            for replica in (a, b):
                served = replica.checkpoint()
                cp = replica.verify(served, (LEKSAND, TIBRO, GAGNEF))
                assert len(cp.cosigners) == 3 and cp.size == replica.verify(note).size
            # The same cosignature handed to both: one row.
            again = cosign(a.members[FALUN], note)
            assert a.add(FALUN, again) == 4 and b.add(FALUN, again) == 4
        finally:
            assert b_hub.stop() == 0, b_hub.log()[-3000:]
    finally:
        assert a.hub.stop() == 0, a.hub.log()[-3000:]
