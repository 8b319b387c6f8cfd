"""Offline bundles between two node folders: export, carry, import, and every way a
file can be damaged on the way."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from clikit import LEKSAND, TIBRO, Cli, Run, make_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samverka.errors import Reason
from samverka.node import Node
from samverka.protocol.verify import TrustedKey
from samverka.replication.bundle import MAGIC, BundleRefused, encode_varint, import_bundle
from samverka.v1 import bundle_pb2, feed_pb2

TIBRO_RECORDS = [
    ["usecase", "add", "--title", "Chattbot på webben", "--summary", "Svarar invånare dygnet runt",
     "--area", "medborgarservice", "--status", "i drift", "--visibility", "public"],
    ["usecase", "add", "--title", "Schemaläggning i hemtjänsten", "--summary", "Optimerar rutter",
     "--area", "äldreomsorg", "--status", "pilot", "--visibility", "members"],
    ["usecase", "add", "--title", "Hemligt utkast", "--summary", "Får inte lämna noden",
     "--area", "it", "--status", "idea", "--visibility", "draft"],
    ["lesson", "add", "--title", "Börja med ett avgränsat flöde", "--category", "kompetens",
     "--use-case", "uc-chattbot-pa-webben", "--visibility", "public"],
    ["usecase", "edit", "uc-chattbot-pa-webben", "--tag", "chatt"],
]  # fmt: skip
PUBLIC_ID, MEMBERS_ID, DRAFT_ID = (
    "uc-chattbot-pa-webben",
    "uc-schemalaggning-i-hemtjansten",
    "uc-hemligt-utkast",
)


@pytest.fixture
def tibro_feed(cli: Cli, tibro: Path) -> Path:
    """Tibro with five entries: public, members, draft, a lesson, an edit."""
    for args in TIBRO_RECORDS:
        result = cli(*args, node=tibro)
        assert result.exit_code == 0, result.output
    return tibro


@pytest.fixture
def bundle_file(cli: Cli, tibro_feed: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tibro.samverka"
    result = cli("bundle", "export", "--out", out, node=tibro_feed)
    assert result.exit_code == 0, result.output
    return out


def items_of(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte spans of each item, read by the documented format, not the code."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7

    assert data.startswith(b"SAMVERKA-BUNDLE/1\n")
    length, pos = varint(len(MAGIC))
    signed = bundle_pb2.SignedBundleHeader.FromString(data[pos : pos + length])
    header = bundle_pb2.BundleHeader.FromString(signed.header)
    pos += length
    spans = []
    for _ in range(header.entry_count):
        length, start = varint(pos)
        spans.append((start, start + length))
        pos = start + length
    assert pos == len(data)
    return spans


def tibro_head(node_dir: Path) -> int:
    with Node.open(node_dir) as node:
        head = node.store.head(TIBRO)
    return head.sequence if head else 0


def test_export_and_import_between_two_nodes(
    run: Run, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tibro.samverka"
    exported = run("bundle", "export", "--out", out, node=tibro_feed)
    assert exported.returncode == 0, exported.stderr
    assert "5 poster ur 1 flöde (2 maskade)" in exported.stdout
    assert b"Hemligt utkast" not in out.read_bytes()  # the draft never leaves
    assert "Schemaläggning".encode() not in out.read_bytes()  # members-only, not included

    refused = run("bundle", "import", out, node=leksand)
    assert refused.returncode == 1
    assert "bundle item 1 (1472#1): unknown_key" in refused.stderr
    assert "--trust-key 1472=" in refused.stderr
    assert tibro_head(leksand) == 0

    key = tibro_feed / "keys" / "signing.pub"
    imported = run("bundle", "import", out, "--trust-key", f"{TIBRO}={key}", node=leksand)
    assert imported.returncode == 0, imported.stderr
    assert "huvudets signatur verifierad" in imported.stdout
    assert "5 nya" in imported.stdout
    assert tibro_head(leksand) == 5
    assert list((leksand / "keys" / "trusted").glob("1472-*.pub"))

    listed = json.loads(run("usecase", "list", "--origin", TIBRO, "--json", node=leksand).stdout)
    assert [r["id"] for r in listed] == [PUBLIC_ID]  # the members record and draft redacted
    assert listed[0]["version"] == 2 and listed[0]["origin_name"] == "Tibro"
    shown = run("usecase", "show", f"{TIBRO}/{PUBLIC_ID}", node=leksand)
    assert "Tibro (1472)" in shown.stdout and "signaturen verifierad" in shown.stdout
    found = json.loads(run("search", "invånare", "--json", node=leksand).stdout)
    assert [(h["origin"], h["id"]) for h in found] == [(TIBRO, PUBLIC_ID)]

    again = run("bundle", "import", out, node=leksand)  # the pin was saved
    assert again.returncode == 0, again.stderr
    assert "0 nya, 5 fanns redan" in again.stdout


def test_members_records_travel_only_when_included(
    cli: Cli, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    out = tmp_path / "med-medlemmar.samverka"
    result = cli("bundle", "export", "--out", out, "--include-members", node=tibro_feed)
    assert result.exit_code == 0 and "(1 maskade)" in result.stdout
    key = tibro_feed / "keys" / "signing.pub"
    assert (
        cli("bundle", "import", out, "--trust-key", f"{TIBRO}={key}", node=leksand).exit_code == 0
    )
    with Node.open(leksand) as node:
        assert node.store.get_record(TIBRO, MEMBERS_ID) is not None
        assert node.store.get_record(TIBRO, DRAFT_ID) is None
    exists = cli("bundle", "export", "--out", out, node=tibro_feed)
    assert exists.exit_code == 1 and "--force" in exists.stderr


def _import(cli: Cli, data: bytes, tmp_path: Path, tibro: Path, leksand: Path) -> str:
    damaged = tmp_path / "damaged.samverka"
    damaged.write_bytes(data)
    key = tibro / "keys" / "signing.pub"
    result = cli("bundle", "import", damaged, "--trust-key", f"{TIBRO}={key}", node=leksand)
    assert result.exit_code == 1, result.output
    assert not list((leksand / "keys" / "trusted").glob("*.pub"))  # pins only on success
    return result.stderr


def test_a_tampered_entry_stops_the_import_there(
    run: Run, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    data = bytearray(bundle_file.read_bytes())
    start, end = items_of(bytes(data))[3]  # 1472#4, the lesson: a signed entry
    title = "Börja med".encode()
    at = data.index(title, start, end)
    data[at] ^= 0x01
    damaged = tmp_path / "tampered.samverka"
    damaged.write_bytes(bytes(data))
    key = tibro_feed / "keys" / "signing.pub"
    result = run("bundle", "import", damaged, "--trust-key", f"{TIBRO}={key}", node=leksand)
    assert result.returncode == 1
    assert "fel: bundle item 4 (1472#4): bad_signature" in result.stderr
    assert tibro_head(leksand) == 3  # entries before it are kept, nothing from it on


def test_a_flipped_byte_in_the_middle_entry_is_named(
    cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    data = bytearray(bundle_file.read_bytes())
    _, end = items_of(bytes(data))[2]  # the middle of five: a redacted stand-in
    data[end - 1] ^= 0xFF  # inside its entry hash
    stderr = _import(cli, bytes(data), tmp_path, tibro_feed, leksand)
    assert "bundle item 3 (1472#3): fork: this redacted entry's hash" in stderr
    assert tibro_head(leksand) == 2  # the contradicted stand-in was not stored


def test_a_truncated_bundle(cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path,
                            tmp_path: Path) -> None:  # fmt: skip
    data = bundle_file.read_bytes()
    spans = items_of(data)
    mid_item = (spans[2][0] + spans[2][1]) // 2
    stderr = _import(cli, data[:mid_item], tmp_path, tibro_feed, leksand)
    assert "bundle item 3 (1472#3): malformed: truncated" in stderr
    # Item 2 is a stand-in: with nothing intact after it to vouch for it, it is left out.
    assert tibro_head(leksand) == 1

    boundary = spans[3][1]  # exactly after item 4: only the header can tell
    stderr = _import(cli, data[:boundary], tmp_path, tibro_feed, leksand)
    assert "bundle item 5 (1472#5): malformed: truncated: the header lists 5 entries" in stderr
    assert tibro_head(leksand) == 4


def test_an_item_claiming_a_huge_length_is_refused_before_reading_it(
    cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    """A length prefix of 2^40 bytes (or one that never ends) is refused as malformed at
    that item, without reading (or allocating) what it claims; the entries before stay."""
    data = bundle_file.read_bytes()
    spans = items_of(data)
    prefix_at, start = spans[1][1], spans[2][0]  # item 3's length prefix lies between
    huge = encode_varint(2**40)
    stderr = _import(cli, data[:prefix_at] + huge + data[start:], tmp_path, tibro_feed, leksand)
    assert "bundle item 3 (1472#3): malformed" in stderr and "claims" in stderr, stderr
    assert tibro_head(leksand) == 1  # item 2, a stand-in, had nothing after it to vouch
    endless = data[:prefix_at] + b"\xff" * 64
    stderr = _import(cli, endless, tmp_path, tibro_feed, make_node(tmp_path / "fresh", LEKSAND))
    assert "bundle item 3 (1472#3): malformed" in stderr, stderr


def test_a_stand_in_changed_in_front_of_a_broken_item_is_not_stored(
    cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    """Tibro's genuine bundle (header signed, key trusted) with item 2, a stand-in for
    its MEMBERS record, changed in transit and item 3 cut short: the stand-in has no
    entry after it to vouch for it and is not the head the signed header names, so it
    is left out; the genuine bundle then imports whole. Before, the changed stand-in was
    stored on the exporter's word and every later import or sync of Tibro's feed stopped
    at a ``fork`` at sequence 2."""
    data = bytearray(bundle_file.read_bytes())
    spans = items_of(bytes(data))
    stand_in = feed_pb2.LogEntry.FromString(bytes(data[spans[1][0] : spans[1][1]]))
    assert stand_in.HasField("redacted") and stand_in.redacted.sequence == 2
    at = data.index(stand_in.redacted.entry_hash, spans[1][0], spans[1][1])
    data[at] ^= 0x01  # another hash: a stand-in for an entry that does not exist
    stderr = _import(cli, bytes(data[: spans[2][0] + 3]), tmp_path, tibro_feed, leksand)
    assert "bundle item 3 (1472#3): malformed: truncated" in stderr, stderr
    assert tibro_head(leksand) == 1
    key = tibro_feed / "keys" / "signing.pub"
    result = cli("bundle", "import", bundle_file, "--trust-key", f"{TIBRO}={key}", node=leksand)
    assert result.exit_code == 0, result.output
    assert tibro_head(leksand) == 5


def test_a_changed_stand_in_that_ends_its_feed_early_is_refused(
    cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    """Tibro's signed header and item 1, item 2 (a stand-in) changed, then three of
    Leksand's own entries in place of Tibro's items 3-5 (the header's item count holds):
    the stand-in ends Tibro's feed in the file although the signed header names
    sequence 5 as its head, so it is refused (fork) and not stored; the genuine bundle
    then imports whole."""
    for title in ("Första", "Andra", "Tredje"):
        added = cli("usecase", "add", "--title", title, "--summary", "s", "--area", "it",
                    "--status", "idea", "--visibility", "public", node=leksand)  # fmt: skip
        assert added.exit_code == 0, added.output
    own = tmp_path / "leksand.samverka"
    assert cli("bundle", "export", "--out", own, node=leksand).exit_code == 0
    theirs = own.read_bytes()
    own_spans = items_of(theirs)
    first = own_spans[0][0] - len(encode_varint(own_spans[0][1] - own_spans[0][0]))
    data = bytearray(bundle_file.read_bytes())
    spans = items_of(bytes(data))
    stand_in = feed_pb2.LogEntry.FromString(bytes(data[spans[1][0] : spans[1][1]]))
    at = data.index(stand_in.redacted.entry_hash, spans[1][0], spans[1][1])
    data[at] ^= 0x01
    crafted = bytes(data[: spans[1][1]]) + theirs[first : own_spans[2][1]]
    stderr = _import(cli, crafted, tmp_path, tibro_feed, leksand)
    assert "bundle item 2 (1472#2): fork" in stderr, stderr
    assert tibro_head(leksand) == 1
    key = tibro_feed / "keys" / "signing.pub"
    result = cli("bundle", "import", bundle_file, "--trust-key", f"{TIBRO}={key}", node=leksand)
    assert result.exit_code == 0, result.output
    assert tibro_head(leksand) == 5


def test_appended_bytes_and_a_tampered_header(
    cli: Cli, bundle_file: Path, tibro_feed: Path, leksand: Path, tmp_path: Path
) -> None:
    data = bundle_file.read_bytes()
    stderr = _import(cli, data + b"\x01\x00", tmp_path, tibro_feed, leksand)
    assert "bytes follow the last of the 5 entries" in stderr

    fresh = make_node(tmp_path / "fresh", LEKSAND)
    header_at = len(MAGIC) + 1 + 4  # inside the signed header bytes
    tampered = bytearray(data)
    tampered[header_at] ^= 0x01
    stderr = _import(cli, bytes(tampered), tmp_path, tibro_feed, fresh)
    assert "bundle:" in stderr
    assert tibro_head(fresh) == 0  # nothing at all: the header is checked first

    not_a_bundle = _import(cli, b"PK\x03\x04" + data, tmp_path, tibro_feed, fresh)
    assert "not a Samverka bundle" in not_a_bundle
    newer = _import(cli, b"SAMVERKA-BUNDLE/2\n", tmp_path, tibro_feed, fresh)
    assert "format version 2 is not supported" in newer


def test_inspect_shows_the_header(cli: Cli, bundle_file: Path, leksand: Path) -> None:
    result = cli("bundle", "inspect", bundle_file, node=leksand)
    assert result.exit_code == 0, result.output
    assert "paket från Tibro (1472)" in result.stdout and "poster        5" in result.stdout
    assert "inte verifierad" in result.stdout


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_any_single_byte_change_keeps_a_verified_prefix(
    bundle_file: Path, tibro_feed: Path, data: st.DataObject
) -> None:
    """Whatever byte changes, every signed entry the receiver keeps is one of Tibro's real
    ones (the fixtures are only read, so sharing them between examples is safe).

    Stand-ins are vouched for by the signed entry after them; of two stand-ins in a row
    the first can only be checked by the origin itself (a limit of redaction).
    """
    original = bundle_file.read_bytes()
    position = data.draw(st.integers(0, len(original) - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    damaged = bytearray(original)
    damaged[position] ^= flip
    with Node.open(tibro_feed) as source:
        truth = source.store.feed_entries(TIBRO)
        tibro_key = source.signing_key.public
    with (
        tempfile.TemporaryDirectory() as tmp,
        Node.open(make_node(Path(tmp) / "n", LEKSAND)) as node,
    ):
        keys = node.keyring()
        keys.add(TrustedKey(TIBRO, tibro_key))
        try:
            import_bundle(node.store, keys, io.BytesIO(bytes(damaged)))
        except BundleRefused as exc:
            assert exc.reason in set(Reason)
        held = node.store.feed_entries(TIBRO)
    held_entries = [feed_pb2.SignedEntry.FromString(b).entry for b in held]
    true_entries = [feed_pb2.SignedEntry.FromString(b).entry for b in truth]
    assert all(e in true_entries for e in held_entries)
