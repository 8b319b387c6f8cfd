"""The node as a monitor of its own kommunkod in the hub's log (issue 11, point 6).

Every directory version the node adopts is checked for its own kommunkod: a key listed
for it that the node does not hold (its signing key, a pending rotation's new key, the
keys it rotated from) is a key the hub bound to this kommun on its own. So is an entry
in the node's own feed, served by the hub, signed with a key the node never held. Either
raises an **alarm**:

- a JSON log line, event ``monitor_alarm`` (level error), and the metric
  ``samverka_monitor_alarms_total{kind}`` (via :data:`alarm_observers`);
- a record ``tlog/alarms/<kind>-<key id>.json`` (one per key: seeing it again is no
  new alarm), which ``samverka doctor`` reports as FAIL until the operator moves it to
  ``tlog/alarms/handled/``; ``samverka sync`` exits 7 (:class:`MonitorAlarm`);
- evidence a third party can check without trusting anyone, in
  ``tlog/evidence/<UTC time>-<kind>/``: the signed directory (or the signed entry), the
  hub's directory key, the node's objection, and, once the hub's log can prove it, the
  log's checkpoint with the inclusion proof of the offending leaf; README.txt says how;
- an **objection** signed by the node's current key (``SignedKeyObjection``): kept in
  ``tlog/keys.json`` (this node refuses the key at once, and serves the objection to
  peers in ``GetLogView``) and sent to the hub (``ObjectToKey``), which lists it in
  its next directory version so every member refuses the key.

What needs the network (the objection to the hub, the log's proof) is done by
:func:`complete_alarms` after each directory refresh, and tried again on the next one
until it succeeds; the alarm itself needs nothing but the files.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from samverka.config import NodeConfig
from samverka.errors import SamverkaError
from samverka.node import (
    HUB_KEY_FILE,
    held_key_ids,
    load_signing_key,
    replace_file,
    update_key_state,
)
from samverka.observers import Observers
from samverka.protocol.checkpoint import open_checkpoint
from samverka.protocol.directory import VerifiedDirectory, build_key_objection
from samverka.protocol.inclusion import LeafClaim, verify_inclusion_proofs
from samverka.protocol.keybinding import keys_not_held
from samverka.protocol.note import Ed25519Verifier, verifier_from_vkey
from samverka.protocol.signing import entry_hash
from samverka.replication.logstate import LogState
from samverka.v1 import directory_pb2

log = logging.getLogger("samverka.membership.monitor")

ALARMS_DIR = "tlog/alarms"
HANDLED_DIR = "tlog/alarms/handled"
EVIDENCE_DIR = "tlog/evidence"

#: Alarm kinds: a key listed for this kommun it does not hold; an entry of its own
#: feed signed with a key it never held.
KEY_NOT_HELD = "key_not_held"
ENTRY_NOT_SIGNED = "entry_not_signed"

#: Told of each new alarm (its kind): ops.metrics counts samverka_monitor_alarms_total.
alarm_observers: Observers[[str]] = Observers()

WHAT_TO_DO = (
    "the hub bound a key to this kommun that this node never held: tell AI-rådet and the "
    "other kommuner at once and hand them the evidence folder; this node has objected "
    "(every member refuses the key once the objection reaches it). When it is handled, "
    "move the alarm file to tlog/alarms/handled/"
)


class MonitorAlarm(SamverkaError):
    """The monitor found this kommun's name misused in the hub's log (exit 7)."""

    reason = "monitor_alarm"

    def __init__(self, alarms: Iterable[Alarm]) -> None:
        found = list(alarms)
        super().__init__(
            "monitor alarm: " + "; ".join(a.detail for a in found),
            hint=WHAT_TO_DO + f" (evidence: {', '.join(a.evidence for a in found)})",
        )
        self.alarms = found


@dataclass
class Alarm:
    """One alarm, as kept in ``tlog/alarms/<kind>-<key id>.json``."""

    kind: str
    kommunkod: str
    key_id: str
    at_ms: int
    detail: str
    #: The evidence folder, relative to the node folder.
    evidence: str
    directory_version: int = 0
    sequence: int = 0
    #: The node's objection (base64 of the SignedKeyObjection), and whether the hub took it.
    objection: str = ""
    objection_sent: bool = False
    #: Whether the evidence holds the log's checkpoint and inclusion proof yet.
    log_proof: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.kind}-{self.key_id}.json"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alarm:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- reading and keeping alarms -----------------------------------------------------------


def open_alarms(config: NodeConfig) -> list[Alarm]:
    """The alarms not yet handled (an unreadable record counts, as a stand-in alarm)."""
    folder = config.dir / ALARMS_DIR
    alarms: list[Alarm] = []
    for path in sorted(folder.glob("*.json")):
        try:
            alarms.append(Alarm.from_json(json.loads(path.read_bytes())))
        except (OSError, ValueError, TypeError) as exc:
            alarms.append(
                Alarm("unreadable", "", path.stem, 0, f"alarm record {path} unreadable: {exc}", "")
            )
    return alarms


def raise_open_alarms(config: NodeConfig, *, cause: BaseException | None = None) -> None:
    """Raise :class:`MonitorAlarm` (exit 8) while alarms are open (not yet handled)."""
    alarms = open_alarms(config)
    if alarms:
        raise MonitorAlarm(alarms) from cause


def _known(config: NodeConfig, kind: str, key_id: str) -> bool:
    name = f"{kind}-{key_id}.json"
    return (config.dir / ALARMS_DIR / name).exists() or (config.dir / HANDLED_DIR / name).exists()


def _keep(config: NodeConfig, alarm: Alarm) -> None:
    data = json.dumps(alarm.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    replace_file(config.dir / ALARMS_DIR / alarm.file_name, data, mode=0o644)


def _keep_evidence(config: NodeConfig, kind: str, files: dict[str, bytes], now_ms: int) -> Path:
    """A new folder ``tlog/evidence/<UTC time>-<kind>/`` (the witness's evidence beside)."""
    hub_pub = config.dir / HUB_KEY_FILE
    if hub_pub.exists():
        files = {**files, "hub.pub": hub_pub.read_bytes()}
    return LogState(config.dir).keep(kind, files, now=now_ms / 1000)


def _write(folder: Path, name: str, data: bytes) -> None:
    replace_file(folder / name, data, mode=0o644)


def _raise(config: NodeConfig, alarm: Alarm) -> None:
    _keep(config, alarm)
    alarm_observers(alarm.kind)
    log.error(
        "MONITOR ALARM: %s; evidence in %s",
        alarm.detail,
        alarm.evidence,
        extra={
            "event": "monitor_alarm",
            "origin": alarm.kommunkod,
            "reason": alarm.kind,
            "sequence": alarm.sequence or None,
            "hint": WHAT_TO_DO,
        },
    )


# -- directories ---------------------------------------------------------------------------


def watch_directory(
    config: NodeConfig, directory: VerifiedDirectory, *, now_ms: int
) -> list[Alarm]:
    """Check a directory version this node adopted for its own kommunkod; raise an alarm
    (with evidence and an objection) for each key listed for it that it does not hold
    and has not alarmed about before. The new alarms."""
    own = config.node.kommun
    foreign = keys_not_held(directory.directory, own, held_key_ids(config))
    fresh = [k for k in foreign if not _known(config, KEY_NOT_HELD, k.key_id)]
    if not fresh:
        return []
    signer = load_signing_key(config.signing_key_path)
    raised: list[Alarm] = []
    objections: list[bytes] = []
    for key in fresh:
        objection = build_key_objection(
            signer, kommunkod=own, objected=bytes(key.public_key), created_at_ms=now_ms
        )
        raw = objection.SerializeToString(deterministic=True)
        objections.append(raw)
        facts = {
            "kind": KEY_NOT_HELD,
            "kommunkod": own,
            "key_id": key.key_id,
            "public_key": base64.b64encode(bytes(key.public_key)).decode(),
            "directory_version": directory.version,
            "directory_digest": directory.digest.hex(),
            "hub_key_id": directory.signed.key_id,
            "keys_held": sorted(held_key_ids(config)),
            "objection_signed_by": signer.key_id,
            "seen_at_ms": now_ms,
        }
        folder = _keep_evidence(
            config,
            KEY_NOT_HELD,
            {
                "directory.bin": directory.signed_bytes(),
                "directory.bytes": bytes(directory.signed.directory),
                "directory.sig": bytes(directory.signed.signature),
                "objection.bin": raw,
                "facts.json": json.dumps(facts, indent=1).encode() + b"\n",
                "README.txt": _directory_readme(facts).encode(),
            },
            now_ms,
        )
        alarm = Alarm(
            kind=KEY_NOT_HELD,
            kommunkod=own,
            key_id=key.key_id,
            at_ms=now_ms,
            detail=(
                f"directory version {directory.version} binds signing key {key.key_id} to "
                f"{own}, a key this node never held"
            ),
            evidence=str(folder.relative_to(config.dir)),
            directory_version=directory.version,
            objection=base64.b64encode(raw).decode(),
        )
        _raise(config, alarm)
        raised.append(alarm)
    # Refused here at once, and served to peers (GetLogView) from now on.
    update_key_state(config, directory, objections=objections, now_ms=now_ms)
    return raised


# -- entries of the node's own feed ------------------------------------------------------------


def watch_own_entry(
    config: NodeConfig,
    signed_entry: bytes,
    *,
    key_id: str,
    sequence: int,
    reason: str,
    now_ms: int,
) -> Alarm | None:
    """An entry in this node's own feed that the hub served, signed with ``key_id``: an
    alarm with the entry as evidence unless this node holds that key (or alarmed about
    it before). The new alarm, if any."""
    own = config.node.kommun
    if key_id in held_key_ids(config) or _known(config, ENTRY_NOT_SIGNED, key_id):
        return None
    facts = {
        "kind": ENTRY_NOT_SIGNED,
        "kommunkod": own,
        "sequence": sequence,
        "key_id": key_id,
        "entry_hash": entry_hash(_entry_bytes(signed_entry)).hex(),
        "refused_as": reason,
        "keys_held": sorted(held_key_ids(config)),
        "seen_at_ms": now_ms,
    }
    folder = _keep_evidence(
        config,
        ENTRY_NOT_SIGNED,
        {
            "entry.bin": signed_entry,
            "facts.json": json.dumps(facts, indent=1).encode() + b"\n",
            "README.txt": _entry_readme(facts).encode(),
        },
        now_ms,
    )
    alarm = Alarm(
        kind=ENTRY_NOT_SIGNED,
        kommunkod=own,
        key_id=key_id,
        at_ms=now_ms,
        detail=(
            f"the hub serves {own}#{sequence}, an entry of this node's own feed signed with "
            f"key {key_id}, which this node never held"
        ),
        evidence=str(folder.relative_to(config.dir)),
        sequence=sequence,
    )
    _raise(config, alarm)
    return alarm


#: Refusals of an entry in this node's own feed that mean another key signed it.
_FOREIGN_KEY_REASONS = frozenset({"key_in_challenge", "key_objected", "unknown_key"})


async def watch_refusal(
    config: NodeConfig, client: Any, refusal: SamverkaError, *, now_ms: int
) -> Alarm | None:
    """A sync from the hub stopped at an entry (``refusal``: a SyncStopped): when it is
    an entry of this node's own feed signed with a key this node never held, fetch it
    from the hub again (its position is named) and raise the alarm with it as evidence."""
    from samverka.protocol.entries import parse_envelope

    origin = getattr(refusal, "origin", "")
    position = int(getattr(refusal, "position", 0) or 0)
    if origin != config.node.kommun or position <= 0:
        return None
    if str(getattr(refusal, "reason", "")) not in _FOREIGN_KEY_REASONS:
        return None
    async with contextlib.aclosing(client.read_entries(position - 1, None, 1)) as pages:
        async for page in pages:
            item = next((e for e in page.entries if e.position == position), None)
            if item is None or not item.HasField("signed"):
                return None
            signed = item.signed.SerializeToString(deterministic=True)
            try:
                key_id = parse_envelope(item.signed).key_id
            except SamverkaError:
                return None
            return watch_own_entry(
                config,
                signed,
                key_id=key_id,
                sequence=int(getattr(refusal, "sequence", 0)),
                reason=str(getattr(refusal, "reason", "")),
                now_ms=now_ms,
            )
    return None


def _entry_bytes(signed_entry: bytes) -> bytes:
    from google.protobuf.message import DecodeError

    from samverka.v1 import feed_pb2

    try:
        return bytes(feed_pb2.SignedEntry.FromString(signed_entry).entry)
    except DecodeError:  # evidence of whatever the hub sent
        return signed_entry


# -- what needs the hub ----------------------------------------------------------------------


async def complete_alarms(config: NodeConfig) -> None:
    """Send the objections the hub has not taken yet, and add the log's checkpoint and
    inclusion proof to the evidence of alarms that lack them. Failures are logged and
    tried again on the next call (each directory refresh)."""
    todo = [
        a
        for a in open_alarms(config)
        if a.kind in (KEY_NOT_HELD, ENTRY_NOT_SIGNED)
        and ((a.objection and not a.objection_sent) or not a.log_proof)
    ]
    if not todo or not config.hub.address:
        return
    from samverka.transport.hubclient import HubClient

    async with HubClient.member(config) as client:
        for alarm in todo:
            if alarm.objection and not alarm.objection_sent:
                signed = directory_pb2.SignedKeyObjection.FromString(
                    base64.b64decode(alarm.objection)
                )
                try:
                    answer = await client.object_to_key(signed)
                except SamverkaError as exc:
                    log.warning(
                        "the hub did not take this node's objection to key %s: %s",
                        alarm.key_id,
                        exc,
                        extra={"event": "objection_not_sent", "origin": alarm.kommunkod},
                    )
                else:
                    alarm.objection_sent = True
                    log.warning(
                        "objection to key %s handed to the hub: %s",
                        alarm.key_id,
                        answer,
                        extra={"event": "objection_sent", "origin": alarm.kommunkod},
                    )
            if not alarm.log_proof:
                with contextlib.suppress(SamverkaError, ValueError, OSError):
                    alarm.log_proof = await _keep_log_proof(config, client, alarm)
            _keep(config, alarm)


async def _keep_log_proof(config: NodeConfig, client: Any, alarm: Alarm) -> bool:
    """Write the hub's checkpoint and the inclusion proof of the alarm's leaf into its
    evidence; False when the log cannot prove it yet (the leaf is newer than the
    checkpoint the witnesses cosigned)."""
    from samverka.node import load_directory

    folder = config.dir / alarm.evidence
    facts = json.loads((folder / "facts.json").read_bytes())
    held = load_directory(config)
    log_key = held.directory.log_key if held is not None else ""
    if not log_key:
        return False
    verifier = verifier_from_vkey(log_key)
    if not isinstance(verifier, Ed25519Verifier):
        return False
    candidates: list[bytes] = []
    held_checkpoint = LogState(config.dir).accepted()
    if held_checkpoint is not None:
        candidates.append(held_checkpoint.note)  # cosigned by other kommuner: the best
    if alarm.kind == KEY_NOT_HELD:
        claim = LeafClaim.directory(
            alarm.directory_version, bytes.fromhex(facts["directory_digest"])
        )
    else:
        claim = LeafClaim.entry(alarm.kommunkod, alarm.sequence, bytes.fromhex(facts["entry_hash"]))
    candidates.append(await client.get_checkpoint())
    for note in candidates:
        checkpoint = open_checkpoint(note, verifier).checkpoint
        try:
            proofs = await client.get_inclusion_proofs(checkpoint.size, [claim.query()])
        except SamverkaError:
            continue  # not in that tree (yet): the hub's newer one, or next time
        verify_inclusion_proofs(checkpoint, [claim], proofs)
        break
    else:
        return False
    [proof] = proofs
    _write(folder, "checkpoint.txt", note)
    _write(folder, "log.key", log_key.encode() + b"\n")
    _write(
        folder,
        "inclusion-proof.json",
        json.dumps(
            {
                "tree_size": checkpoint.size,
                "leaf_index": proof.leaf_index,
                "leaf": bytes(proof.leaf).hex(),
                "hashes": [bytes(h).hex() for h in proof.hashes],
            },
            indent=1,
        ).encode()
        + b"\n",
    )
    return True


# -- the start of challenge periods --------------------------------------------------------


async def start_challenges(config: NodeConfig) -> bool:
    """Start the challenge period of the keys the held directory lists in challenge
    that no accepted checkpoint has shown yet: prove the held directory version in the
    hub's log against an accepted checkpoint (asking the hub once for a newer one, no
    waiting) and, when it is proven, mark it so in ``tlog/keys.json``. True if proven.

    A key is thus bound only once the other kommuner have cosigned a checkpoint holding
    the directory that lists it, so the kommun it names could have seen it (as its
    monitor does) and objected. Not proven now: tried again at the next refresh."""
    from samverka.node import load_directory, load_key_state
    from samverka.protocol.keybinding import Standing
    from samverka.replication.logproof import LogProver
    from samverka.replication.logstate import LogAcceptor

    directory = load_directory(config)
    if directory is None or not config.hub.address or not directory.directory.log_key:
        return False
    state = load_key_state(config)
    waiting = [
        b
        for m in directory.directory.members
        for k in m.keys
        if (b := state.binding(m.kommunkod, k.key_id)) is not None
        and b.standing is Standing.PENDING
        and b.proven_ms is None
    ]
    if not waiting:
        return False
    from samverka.transport.hubclient import HubClient

    try:
        async with HubClient.member(config) as client:
            prover = LogProver(
                client.get_inclusion_answer,
                LogAcceptor.for_node(config, client),
                wait=0.0,
                hub=config.hub.address,
            )
            await prover.prove_directory(directory.version, directory.digest)
    except SamverkaError as exc:
        log.info(
            "directory version %d not proven in an accepted checkpoint yet (%s): the "
            "challenge period of %d key(s) has not started",
            directory.version,
            exc,
            len(waiting),
            extra={"event": "challenge_not_started", "count": len(waiting)},
        )
        return False
    update_key_state(config, directory, proven=True)
    log.info(
        "directory version %d proven in the hub's log: the challenge period of %s starts",
        directory.version,
        ", ".join(f"{b.kommunkod}:{b.key_id}" for b in waiting),
        extra={"event": "challenge_started", "count": len(waiting)},
    )
    return True


# -- README for a third party -------------------------------------------------------------------


def _directory_readme(facts: dict[str, Any]) -> str:
    return f"""Evidence: the Samverka hub bound a signing key to kommun {facts["kommunkod"]}
that this kommun's node never held.

Kept by the node of {facts["kommunkod"]} at {_utc(facts["seen_at_ms"])}. Nothing here needs
trusting the node or the hub; each step is checked with public keys and hashes only.

1. directory.bytes is a member directory (protobuf samverka.v1.Directory, version
   {facts["directory_version"]}); directory.sig is the hub's Ed25519 signature over
   b"samverka/v1/directory\\x00" + directory.bytes, made with the hub's directory key
   (hub.pub, key id {facts["hub_key_id"]} = hex of the first 16 bytes of SHA-256 over
   the raw 32-byte public key). directory.bin is the SignedDirectory as the hub served it.
2. The directory lists, for member {facts["kommunkod"]}, the key {facts["key_id"]}
   (raw public key, base64: {facts["public_key"]}) with no key rotation
   (Member.rotations) signed by an earlier key of {facts["kommunkod"]} announcing it.
3. objection.bin is {facts["kommunkod"]}'s statement that this key is not its own
   (samverka.v1.SignedKeyObjection): an Ed25519 signature over
   b"samverka/v1/key-objection\\x00" + the KeyObjection bytes, by the key
   {facts["objection_signed_by"]}, which the same directory lists for {facts["kommunkod"]}.
4. When present: checkpoint.txt is the hub's transparency-log checkpoint (a C2SP signed
   note, verify with log.key and the witnesses' cosignature lines), and
   inclusion-proof.json the RFC 9162 inclusion proof, in the tree of that size, of
   the leaf 0x01 0x02 || uint64-BE version || SHA-256(directory.bytes)
   (digest {facts["directory_digest"]}): the hub published this directory to every
   member and its witnesses, it cannot claim it showed it to nobody.

facts.json holds the same facts for a program.
"""


def _entry_readme(facts: dict[str, Any]) -> str:
    return f"""Evidence: the Samverka hub served an entry in kommun {facts["kommunkod"]}'s own
feed (sequence {facts["sequence"]}) signed with key {facts["key_id"]}, which this
kommun's node never held. Kept by that node at {_utc(facts["seen_at_ms"])}.

entry.bin is the samverka.v1.SignedEntry as served; its signature is Ed25519 over
b"samverka/v1/entry\\x00" + the entry bytes; its entry hash (SHA-256 of the entry
bytes) is {facts["entry_hash"]}. The node refused it ({facts["refused_as"]}). When
present, checkpoint.txt and inclusion-proof.json prove the hub logged the leaf
0x01 0x01 || uint64-BE sequence || uint8 len || origin || entry hash.
facts.json holds the same facts for a program.
"""


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
