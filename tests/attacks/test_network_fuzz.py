"""Hypothesis mutants of valid Publish requests, sent over mutual TLS to a real hub.

tests/core/test_mutations.py mutates signed entries against ``verify_entry`` in
memory (1,200 cases in ``make test``, 20,000 per property in ``make soak``). This is
the same idea through the whole way in: gRPC decoding, the interceptor, Publish,
ingest and the store. Each case starts from a request the hub would take (the next
entry of a feed, an entry it already holds, a redacted stand-in relayed together with
the signed entry that vouches for it), changes it once (a flipped bit anywhere in the
request, a flip inside the signed bytes, a truncation, an inserted or deleted byte, a
splice of two requests, a field taken from another entry) and asserts:

- the hub answers INVALID_ARGUMENT or FAILED_PRECONDITION with a Samverka reason, or
  OK having stored nothing (a mutant that shrank to a duplicate or an empty request);
- never INTERNAL, UNKNOWN or a dropped connection (zero crashes);
- its store (log position and every feed head) did not change (zero accepted mutants).

A case that still carries a not-yet-held original verbatim (for instance the request
followed by bytes that add a second, harmless entry) is skipped: taking that entry
would be right, and it is no mutant of the signed content.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
import uvloop
from arena import GAGNEF, LEKSAND, TIBRO, Arena, Outcome, Wire, hub_state, request_bytes
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from samverka.errors import Reason
from samverka.protocol.signing import entry_hash
from samverka.store.store import Store
from samverka.transport.server.status import from_rpc_error
from samverka.v1 import feed_pb2, feed_service_pb2, hub_service_pb2, records_pb2
from soakresults import record

#: Cases in ``make test`` (a few hundred); the soak profile's 20,000 when loaded.
EXAMPLES = max(300, settings().max_examples)

REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
#: Other answers a well-formed request of some method may rightly get: a caller who is
#: no member, a proof of a leaf the tree of that size lacks (GetInclusionProofs), a
#: limit reached. Anything else (a time-out, a dropped call) is counted as a crash.
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
#: Entry refusals, and the wire limits' (samverka.protocol.wire) for the request itself.
REASONS = {r.value for r in Reason} | {"invalid_request", "too_many_items", "out_of_range"}


@dataclass(frozen=True)
class Base:
    name: str
    raw: bytes


@dataclass
class Fuzzing:
    arena: Arena
    runner: asyncio.Runner
    wire: Wire
    store: Store
    bases: list[Base]
    #: Signed entries the hub does not hold: a request carrying one verbatim is no mutant.
    unheld: set[tuple[bytes, bytes, str]]
    #: The original stand-in + vouching entry pair (relayed by Leksand for Gagnef).
    pair: tuple[bytes, tuple[bytes, bytes, str]]
    stats: Counter[str]

    def send(self, raw: bytes) -> Outcome:
        return self.runner.run(self.wire.publish(raw))


def _signed_key(signed: feed_pb2.SignedEntry) -> tuple[bytes, bytes, str]:
    return (bytes(signed.entry), bytes(signed.signature), signed.key_id)


@pytest.fixture(scope="module")
def fuzzing(hub_arena: Arena) -> Iterator[Fuzzing]:
    leksand = hub_arena.writer(LEKSAND)
    held = [leksand.publish(record_id=f"fuzz-held-{i}", tags=["fuzz"]) for i in range(2)]
    assert hub_arena.publish(LEKSAND, *held).accepted == 2
    next_leksand = leksand.publish(record_id="fuzz-next", title="Nästa post för fuzzning")
    tibro = hub_arena.writer(TIBRO)
    next_tibro = tibro.publish("lesson", record_id="fuzz-lesson", origin=TIBRO)
    gagnef = hub_arena.writer(GAGNEF)
    draft = gagnef.publish(record_id="fuzz-draft", visibility=records_pb2.VISIBILITY_DRAFT)
    after_draft = gagnef.publish(record_id="fuzz-after-draft")
    stand_in = feed_pb2.LogEntry(
        redacted=feed_pb2.RedactedEntry(
            origin=GAGNEF, sequence=gagnef.sequence - 1, entry_hash=entry_hash(draft.entry)
        )
    )
    bases = [
        Base("next entry", request_bytes(next_leksand)),
        Base("held entry", request_bytes(held[0])),
        Base("another origin's next entry", request_bytes(next_tibro)),
        Base("stand-in and its voucher", request_bytes(stand_in, after_draft)),
        Base("held and next", request_bytes(held[1], next_leksand)),
    ]
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)

    async def open_wire() -> Wire:
        return Wire(hub_arena.hub.member, hub_arena.members[LEKSAND].tls())

    wire = runner.run(open_wire())
    store = hub_arena.hub.open_store()
    stats: Counter[str] = Counter()
    try:
        yield Fuzzing(
            hub_arena,
            runner,
            wire,
            store,
            bases,
            {_signed_key(next_leksand), _signed_key(next_tibro)},
            (stand_in.SerializeToString(), _signed_key(after_draft)),
            stats,
        )
    finally:
        runner.run(wire.channel.close())
        runner.close()
        store.close()
        record(
            "fuzz", "Publish mutants over mutual TLS", cases=stats["cases"],
            accepted=stats["accepted"], crashes=stats["crashes"], skipped=stats["skipped"],
        )  # fmt: skip
        record(
            "fuzz", "every request type at numeric edges, unknown wrapper fields",
            cases=stats["wrapper cases"], accepted=0, crashes=stats["wrapper crashes"],
            skipped=0,
            codes={k[len("code "):]: v for k, v in sorted(stats.items()) if k.startswith("code ")},
        )  # fmt: skip


def _legitimate(fuzz: Fuzzing, raw: bytes) -> bool:
    """True if ``raw`` decodes to a request the hub may rightly take something from."""
    try:
        request = hub_service_pb2.PublishRequest.FromString(raw)
    except Exception:
        return False
    stand_in, voucher = fuzz.pair
    seen_stand_in = False
    for item in request.entries:
        if item.HasField("redacted"):
            seen_stand_in = seen_stand_in or item.SerializeToString() == stand_in
            continue
        key = _signed_key(item.signed)
        if key in fuzz.unheld or (key == voucher and seen_stand_in):
            return True
    return False


def _flip(data: bytes, index: int, mask: int) -> bytes:
    i = index % len(data)
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


@st.composite
def mutants(draw: st.DrawFn, bases: list[Base]) -> tuple[str, str, bytes, Reason | None]:
    """(kind, base name, mutated request bytes, the precise reason expected or None)."""
    base = draw(st.sampled_from(bases))
    raw = base.raw
    kind = draw(
        st.sampled_from(["flip", "signed flip", "truncate", "insert", "delete", "splice", "swap"])
    )
    index = draw(st.integers(0, len(raw) - 1), label="index")
    expected: Reason | None = None
    if kind == "flip":
        out = _flip(raw, index, draw(st.integers(1, 255), label="mask"))
    elif kind == "truncate":
        out = raw[:index]
    elif kind == "insert":
        out = raw[:index] + bytes([draw(st.integers(0, 255), label="byte")]) + raw[index:]
    elif kind == "delete":
        out = raw[:index] + raw[index + 1 :]
    elif kind == "splice":
        other = draw(st.sampled_from(bases)).raw
        out = raw[:index] + other[draw(st.integers(0, len(other)), label="j") :]
    else:
        request = hub_service_pb2.PublishRequest.FromString(raw)
        signed = [i for i, e in enumerate(request.entries) if e.HasField("signed")]
        target = request.entries[draw(st.sampled_from(signed), label="entry")].signed
        if kind == "signed flip":
            part = draw(st.sampled_from(["entry", "signature"]), label="part")
            value = getattr(target, part)
            setattr(target, part, _flip(value, index, draw(st.integers(1, 255), label="m")))
            expected = Reason.BAD_SIGNATURE
        else:
            donor_request = hub_service_pb2.PublishRequest.FromString(
                draw(st.sampled_from(bases), label="donor").raw
            )
            donor = next(e.signed for e in donor_request.entries if e.HasField("signed"))
            swap = draw(st.sampled_from(["entry", "signature", "key_id", "exchange"]))
            if swap == "exchange":
                target.entry, target.signature = bytes(target.signature), bytes(target.entry)
            else:
                setattr(target, swap, getattr(donor, swap))
        out = request.SerializeToString()
    return kind, base.name, out, expected


def test_the_bases_are_what_the_hub_would_take(fuzzing: Fuzzing) -> None:
    """Unmutated, each base is new or held, so a refusal below is the mutation's doing."""
    for base in fuzzing.bases:
        try:
            request = hub_service_pb2.PublishRequest.FromString(base.raw)
        except Exception as exc:  # pragma: no cover - the bases are built above
            raise AssertionError(base.name) from exc
        assert request.entries, base.name


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_no_mutant_is_accepted_and_nothing_crashes(fuzzing: Fuzzing, data: st.DataObject) -> None:
    kind, base, raw, expected = data.draw(mutants(fuzzing.bases))
    originals = {b.raw for b in fuzzing.bases}
    if raw in originals or _legitimate(fuzzing, raw):
        fuzzing.stats["skipped"] += 1
        assume(False)
    before = hub_state(fuzzing.store)
    outcome = fuzzing.send(raw)
    after = hub_state(fuzzing.store)
    fuzzing.stats["cases"] += 1
    if outcome.ok and outcome.accepted:
        fuzzing.stats["accepted"] += 1
    if not outcome.ok and outcome.code not in REFUSALS:
        fuzzing.stats["crashes"] += 1
    where = f"{kind} of the {base}: {outcome}"
    assert outcome.code in REFUSALS | {grpc.StatusCode.OK}, where
    if outcome.ok:
        assert outcome.accepted == 0, where
    else:
        assert outcome.reason in REASONS, where
        if expected is not None:
            assert outcome.reason == expected.value, where
    assert after == before, f"the hub's store changed: {where}"


# -- the unsigned wrappers of every request type, and numeric edges ---------------------------

#: Values for integer fields: the edges of each width, SQL's signed 64 bits among them.
EDGES = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]
#: Every unary or server-streaming method of both services, with the port to call it on.
METHODS = [
    ("/samverka.v1.HubService/" + m.name, m.input_type, m.server_streaming)
    for m in hub_service_pb2.DESCRIPTOR.services_by_name["HubService"].methods
] + [
    ("/samverka.v1.FeedService/" + m.name, m.input_type, m.server_streaming)
    for m in feed_service_pb2.DESCRIPTOR.services_by_name["FeedService"].methods
]
_VARINT = {
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_BOOL,
}  # fmt: skip


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def wrapper_requests(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> tuple[bytes, bool]:
    """Raw bytes of a ``descriptor`` message: its integer fields at numeric edges, its
    messages nested, maybe an unknown field. Also: whether a wire limit must refuse it
    (a uint64 >= 2^63, a uint32 past 32 bits, or an unknown field)."""
    out, refuse = bytearray(), False
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        key = field.number << 3
        if field.type in _VARINT:
            value = draw(st.sampled_from(EDGES))
            out += _varint(key) + _varint(value)
            if field.type == FieldDescriptor.TYPE_UINT64 and value >= 2**63:
                refuse = True
            if field.type == FieldDescriptor.TYPE_UINT32 and value >= 2**32:
                refuse = True
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3:
            inner, bad = draw(wrapper_requests(field.message_type, depth + 1))
            out += _varint(key | 2) + _varint(len(inner)) + inner
            refuse |= bad
        elif field.type == FieldDescriptor.TYPE_STRING:
            text = draw(st.sampled_from(["", "1484", "2029", "0000", "x" * 40])).encode()
            out += _varint(key | 2) + _varint(len(text)) + text
        elif field.type == FieldDescriptor.TYPE_BYTES:
            blob = draw(st.binary(max_size=80))
            out += _varint(key | 2) + _varint(len(blob)) + blob
    if draw(st.integers(0, 9)) == 0:  # an unknown field, anywhere in the wrappers
        number = max((f.number for f in descriptor.fields), default=0) + draw(st.integers(1, 50))
        out += _varint(number << 3) + _varint(draw(st.sampled_from(EDGES)))
        refuse = True
    return bytes(out), refuse


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_every_request_type_at_numeric_edges_is_answered_never_internal(
    fuzzing: Fuzzing, data: st.DataObject
) -> None:
    path, descriptor, streaming = data.draw(st.sampled_from(METHODS))
    raw, refuse = data.draw(wrapper_requests(descriptor))
    before = hub_state(fuzzing.store)
    code, reason = fuzzing.runner.run(_call(fuzzing, path, raw, streaming))
    after = hub_state(fuzzing.store)
    fuzzing.stats["wrapper cases"] += 1
    fuzzing.stats[f"code {code.name}"] += 1  # the soak table's record says which answers came
    where = f"{path} {raw.hex()}: {code.name} {reason}"
    if code not in REFUSALS | ANSWERS:
        fuzzing.stats["wrapper crashes"] += 1
    assert code not in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}, where
    assert code is not grpc.StatusCode.UNAVAILABLE, where
    if refuse:
        assert (code, reason) in {
            (grpc.StatusCode.INVALID_ARGUMENT, "out_of_range"),
            (grpc.StatusCode.INVALID_ARGUMENT, "malformed"),
        }, where
    assert after == before or path.endswith("/Enroll"), f"the hub's store changed: {where}"


async def _call(
    fuzzing: Fuzzing, path: str, raw: bytes, streaming: bool
) -> tuple[grpc.StatusCode, str]:
    channel = fuzzing.wire.channel
    for _ in range(200):
        try:
            if streaming:
                call = channel.unary_stream(
                    path, request_serializer=lambda b: b, response_deserializer=bytes
                )(raw, timeout=10)
                async for _reply in call:
                    break  # a live subscription that answered: enough
                call.cancel()
            else:
                await channel.unary_unary(
                    path, request_serializer=lambda b: b, response_deserializer=bytes
                )(raw, timeout=10)
        except grpc.aio.AioRpcError as err:
            exc = from_rpc_error(err)
            reason = str(getattr(exc, "reason", ""))
            if reason == "overloaded":
                await asyncio.sleep(0.05)
                continue
            return err.code(), reason
        return grpc.StatusCode.OK, ""
    raise AssertionError("overloaded for 10 s")
