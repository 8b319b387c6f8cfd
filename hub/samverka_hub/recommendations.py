"""The council's recommendations: guidance and positions of AI-rådet, as signed records.

A recommendation is a record of kind Recommendation in the hub's own feed (origin
"0000"), signed with the hub's Ed25519 key by the same
:class:`~samverka.records.publisher.Publisher` a node uses, so it is an entry like any other:
verified before it is stored, served in the hub's log, synced by every node and
verified there against the hub's key, which the signed member directory lists as
member 0000. Validation refuses a recommendation from any other origin.

The fields are the flat form of :mod:`samverka.records.recordform` (title, summary, body,
area, reference, link, tag, visibility), so ``samverka hub recommend`` has the same
options and messages as ``samverka usecase``. Every change is a new version;
retiring writes a tombstone; nothing is erased.

Writing into the hub's database from the operator's CLI while ``hub serve`` runs is
safe: the append is one transaction under the database's write lock (another
replica or process publishing as 0000 at the same moment makes the publisher retry,
never fork the feed), and the running servers notice the new log position through
their log watcher (LISTEN/NOTIFY on PostgreSQL, polling on SQLite) and hand the
entry to their subscribers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from samverka.cli.records import RecordRefused, check_record
from samverka.errors import SamverkaError
from samverka.node import Node
from samverka.protocol.entries import ParsedEntry
from samverka.protocol.kommuner import HUB_ORIGIN
from samverka.records.recordform import (
    FIELDS_BY_NAME,
    apply_form,
    derive_id,
    new_record,
    read_form,
    required_fields,
    same_content,
)
from samverka.store.store import Store, StoredRecord
from samverka.v1 import records_pb2

BODY = "recommendation"
KIND = records_pb2.RECORD_KIND_RECOMMENDATION
NOUN = "recommendation"


class _TakenIds:
    """``id in taken``: whether the hub's feed already has a record with that id."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __contains__(self, record_id: object) -> bool:
        return self.store.get_record(HUB_ORIGIN, str(record_id)) is not None


def draft(values: Mapping[str, Any], *, record_id: str | None = None) -> records_pb2.Record:
    """A new recommendation from flat form values (not yet checked or signed).

    Raises RecordRefused naming every value that does not convert.
    """
    record = new_record(BODY, HUB_ORIGIN)
    issues = apply_form(record, dict(values), own_origin=HUB_ORIGIN)
    if issues:
        raise RecordRefused(NOUN, issues)
    if record_id:
        record.header.id = record_id
    return record


def missing_fields(record: records_pb2.Record) -> list[str]:
    """Required flat fields the record does not fill yet."""
    form = read_form(record)
    return [name for name in required_fields(BODY) if not form.get(name)]


def add(node: Node, record: records_pb2.Record) -> ParsedEntry:
    """Sign and store a new recommendation; its id is derived from the title if unset."""
    _check_hub(node)
    if record.header.id:
        if node.store.get_record(HUB_ORIGIN, record.header.id) is not None:
            raise SamverkaError(
                f"the council already has a record {record.header.id!r}",
                hint=f"change it with `samverka hub recommend edit {record.header.id} …`",
            )
    else:
        title = read_form(record).get("title") or NOUN
        record.header.id = derive_id(str(title), BODY, _TakenIds(node.store))
    check_record(record, NOUN, HUB_ORIGIN)
    return node.publisher().publish(record)


def edit(
    node: Node,
    record_id: str,
    values: Mapping[str, Any],
    *,
    clear: Sequence[str] = (),
) -> ParsedEntry | None:
    """Publish a new version with the given fields changed; None when nothing changed.

    ``clear`` names fields to empty. Repeatable fields are replaced as a whole.
    """
    _check_hub(node)
    stored = get(node.store, record_id)
    if stored.tombstone:
        raise SamverkaError(f"recommendation {record_id!r} is retired; its history stays as it is")
    changes = dict(values)
    for name in clear:
        field = FIELDS_BY_NAME.get(name)
        if field is None or not field.applies_to(BODY) or name == "id":
            raise SamverkaError(f"{name!r} is not a field of a recommendation")
        changes[name] = [] if field.multiple(BODY) else ""
    if not changes:
        raise SamverkaError(
            "nothing to change",
            hint="give the fields to change, see `samverka hub recommend edit --help`",
        )
    record = records_pb2.Record()
    record.CopyFrom(stored.record)
    issues = apply_form(record, changes, own_origin=HUB_ORIGIN)
    if issues:
        raise RecordRefused(NOUN, issues)
    if same_content(record, stored.record):
        return None
    check_record(record, NOUN, HUB_ORIGIN)
    return node.publisher().publish(record)


def retire(node: Node, record_id: str) -> ParsedEntry:
    """Withdraw a recommendation: a signed tombstone version. History stays."""
    _check_hub(node)
    get(node.store, record_id)  # refuses ids that are not the council's recommendations
    return node.publisher().retire(record_id)


def get(store: Store, record_id: str) -> StoredRecord:
    """The current version of one of the council's recommendations."""
    stored = store.get_record(HUB_ORIGIN, record_id)
    if stored is None or stored.kind != KIND:
        raise SamverkaError(
            f"the council has no recommendation {record_id!r}",
            hint="list them with `samverka hub recommend list`",
        )
    return stored


def listing(store: Store, *, include_retired: bool = False) -> list[StoredRecord]:
    """The council's recommendations, newest change first."""
    return store.list_records(
        kinds=[KIND], origins=[HUB_ORIGIN], include_tombstoned=include_retired
    )


def _check_hub(node: Node) -> None:
    if node.origin != HUB_ORIGIN:
        raise SamverkaError(
            f"recommendations are published by the council's hub, not by {node.origin}",
            hint="run `samverka hub recommend` with --dir pointing at the hub folder",
        )
