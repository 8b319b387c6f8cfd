"""``python -m samverka_hub.demo`` (``make demo``): a whole federation on this machine.

AI-rådet's hub and the nodes of Leksand, Kungsbacka, Tibro and Gagnef, talking gRPC
over mutual TLS on 127.0.0.1, each with its own SQLite file in one folder. The story:
the kommuner enroll and the council approves them; they publish records drawn from
public sources (:mod:`samverka_hub.demo.content`); the hub aggregates them both ways
(Kungsbacka and Tibro push, the hub harvests Leksand's node); Gagnef, a small kommun
without a server, syncs, verifies every entry against its origin's key, finds
Leksand's AI policy and Kungsbacka's assistant offline, adopts the policy, and the
adoption flows back to Leksand. Then everything stops and the folder is removed.

What runs where, and why: the servers (``samverka hub serve``, ``samverka node
serve``) are real processes, as in production (:mod:`samverka_hub.demo.processes`); what
an operator types once (creating folders, enrollment requests, the council's
decisions, authoring) runs in this process through the same library calls the CLI
makes, which keeps the demo well under a minute; the steps a small kommun repeats
(``samverka sync``, ``samverka adopt``) run as the real commands.

``DEMO_KEEP=DIR`` uses DIR (empty or new) instead of a temporary folder and leaves the
hub and the nodes running, with a ``stop.sh`` and directions printed at the end.

This module imports the hub package (``samverka_hub``) inside functions only: the demo
orchestrates both sides, like the CLI's ``hub`` group, while ``samverka`` itself never
depends on the hub.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from samverka_hub.demo import content
from samverka_hub.demo.processes import DemoError, Server, Servers

if TYPE_CHECKING:
    from samverka.node import Node
    from samverka.store.store import StoredRecord

    from samverka_hub.folder import Hub

T = TypeVar("T")

#: How long to wait for something that takes a fraction of a second when all is well.
PATIENCE = 30.0

#: The cast: kommunkod, folder, contact role at enrollment, and how its feed reaches
#: the hub ("harvest": the hub reads its node; "push": its node sends; "sync": no
#: server, `samverka sync` pushes).
CAST = (
    (content.LEKSAND, "leksand", "administrativ chef", "harvest"),
    (content.KUNGSBACKA, "kungsbacka", "digitaliseringschef", "push"),
    (content.TIBRO, "tibro", "digitaliseringskoordinator", "push"),
    (content.GAGNEF, "gagnef", "utvecklingsledare digitalisering", "sync"),
)

#: The id of Gagnef's adoption of Leksand's policy.
ADOPTION_ID = "adopt-leksand-ai-policy"

#: Settings for the demo's hub (environment overrides; see docs/CONFIGURATION.md):
#: harvest often (Leksand's node starts after the hub, so the first harvest fails and
#: the next waits one interval: 0.5 s, not 2), notice the council's decisions quickly,
#: drain quickly on SIGTERM.
HUB_ENV = {
    "SAMVERKA_HARVEST_INTERVAL_SECONDS": "0.5",
    "SAMVERKA_HARVEST_MAX_BACKOFF_SECONDS": "0.5",
    "SAMVERKA_DIRECTORY_POLL_SECONDS": "0.25",
    "SAMVERKA_SERVER_GRACE_SECONDS": "2",
}
NODE_ENV = {"SAMVERKA_SERVER_GRACE_SECONDS": "2"}
#: Leksand's node only serves: the hub harvests it (its push agent is off).
HARVESTED_ENV = {**NODE_ENV, "SAMVERKA_HUB_PUSH": "false"}


#: When this program began (the account's total time counts from here).
STARTED = time.monotonic()


class Story:
    """Prints the demo's account: numbered steps of one or two lines, details indented."""

    def __init__(self) -> None:
        self.number = 0
        self.began = STARTED

    def step(self, text: str) -> None:
        self.number += 1
        print(f"{self.number:>2}. {text}", flush=True)

    def more(self, text: str) -> None:
        print(f"    {text}" if text else "", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.began


@dataclass
class Member:
    """One kommun of the cast, with its node folder open in this process."""

    code: str
    dir: Path
    contact_role: str
    aggregation: str
    node: Node
    listen: str = "127.0.0.1:0"

    @property
    def name(self) -> str:
        return self.node.name

    def reopen(self) -> None:
        """Open the folder again (enrollment rewrote samverka.toml and the certificates)."""
        from samverka.node import Node

        self.node.close()
        self.node = Node.open(self.dir)


@dataclass
class Federation:
    folder: Path
    servers: Servers
    hub: Hub
    members: dict[str, Member]
    addresses: dict[str, str]

    def member(self, code: str) -> Member:
        return self.members[code]


# -- the steps ---------------------------------------------------------------------------


async def run(folder: Path, servers: Servers, story: Story, stack: ExitStack) -> Federation:
    fed = await start_federation(folder, servers, story, stack)
    await enroll_members(fed, story)
    start_nodes(fed, story)
    publish(fed, story)
    await aggregate(fed, story)
    gagnef_syncs(fed, story)
    gagnef_searches(fed, story)
    gagnef_suits(fed, story)
    await gagnef_adopts(fed, story)
    show_visibility(fed, story)
    await show_log(fed, story)
    show_coverage(fed, story)
    return fed


async def start_federation(
    folder: Path, servers: Servers, story: Story, stack: ExitStack
) -> Federation:
    from samverka.node import init_node

    from samverka_hub.folder import init_hub

    hub_dir = folder / "hub"
    hub = stack.enter_context(
        init_hub(hub_dir, member_listen="127.0.0.1:0", public_listen="127.0.0.1:0")
    )
    address_file = folder / "hub.addresses"
    server = servers.start(
        "hub",
        ["hub", "serve", "--dir", str(hub_dir), "--address-file", str(address_file),
         "--web-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--log-format", "console"],
        env=HUB_ENV,
    )  # fmt: skip

    # The kommuner create their nodes while the hub starts.
    members: dict[str, Member] = {}
    for code, slug, role, aggregation in CAST:
        # A harvested node needs an address the hub can call, known before it enrolls.
        listen = f"127.0.0.1:{free_port()}" if aggregation == "harvest" else "127.0.0.1:0"
        node = init_node(folder / slug, code, listen=listen)
        members[code] = Member(code, folder / slug, role, aggregation, node, listen)
    stack.callback(close_all, members)

    addresses: dict[str, str] = servers.wait_for_address(server, address_file, timeout=PATIENCE)
    fed = Federation(folder, servers, hub, members, addresses)
    story.step(
        f"AI-rådet creates its hub (signing key {hub.signing_key.key_id}, a certificate "
        "authority) and starts `samverka hub serve`:"
    )
    story.more(
        f"member port {addresses['member']} (mutual TLS), public port {addresses['public']} "
        f"(server TLS), web catalog http://{addresses['web']}/"
    )
    names = ", ".join(f"{m.code} {m.name}" for m in members.values())
    story.step(f"Four kommuner create their nodes (Ed25519 signing key, TLS key): {names}")
    return fed


async def enroll_members(fed: Federation, story: Story) -> None:
    from samverka.membership.member import APPROVED, PENDING, enroll

    ca_pem = fed.hub.config.ca_cert_path.read_bytes()
    public = fed.addresses["public"]

    async def ask(m: Member) -> int:
        address = m.listen if m.aggregation == "harvest" else ""
        outcome = await enroll(
            m.node, hub=public, ca_pem=ca_pem, address=address, contact_role=m.contact_role
        )
        return outcome.status

    statuses = await asyncio.gather(*(ask(m) for m in fed.members.values()))
    if any(s != PENDING for s in statuses):
        raise DemoError(f"expected pending enrollment requests, the hub answered {statuses}")
    pending = {row.kommunkod: row.key_id for row in fed.hub.council.pending()}
    # The council approves each request after confirming its key id with the kommun.
    for m in fed.members.values():
        if pending.get(m.code) != m.node.signing_key.key_id:
            raise DemoError(f"the hub holds no request from {m.code} with its key")
        admission = fed.hub.council.approve(m.code, key_id=m.node.signing_key.key_id)
    statuses = await asyncio.gather(*(ask(m) for m in fed.members.values()))
    if any(s != APPROVED for s in statuses):
        raise DemoError(f"expected approved enrollments, the hub answered {statuses}")
    for m in fed.members.values():
        m.reopen()
    story.step(
        "Each asks to join over the public port with a signed request; the council checks "
        "the key ids and approves them (as `samverka hub members approve` does):"
    )
    story.more(
        f"4 certificates from the council's CA; the signed member directory, version "
        f"{admission.directory.version}, lists 5 members with their signing keys"
    )


def start_nodes(fed: Federation, story: Story) -> None:
    serving = [m for m in fed.members.values() if m.aggregation != "sync"]
    started: list[tuple[Member, Server, Path]] = []
    for m in serving:
        address_file = fed.folder / f"{m.dir.name}.address"
        server = fed.servers.start(
            m.dir.name,
            ["node", "serve", "--dir", str(m.dir), "--address-file", str(address_file),
             "--log-format", "console"],
            env=HARVESTED_ENV if m.aggregation == "harvest" else NODE_ENV,
        )  # fmt: skip
        started.append((m, server, address_file))
    for m, server, address_file in started:
        fed.addresses[m.code] = fed.servers.wait_for_address(server, address_file, timeout=PATIENCE)
    leksand = fed.member(content.LEKSAND)
    story.step(
        "Leksand, Kungsbacka and Tibro start `samverka node serve` (mutual TLS); "
        "Gagnef runs no server."
    )
    story.more(
        f"the hub harvests Leksand's node at {fed.addresses[leksand.code]}; "
        "Kungsbacka's and Tibro's nodes push to the hub"
    )


def publish(fed: Federation, story: Story) -> None:
    from samverka.protocol.vocab import RECORD_KIND, SOLUTION_TYPE, USE_CASE_STATUS

    lines = []
    total = 0
    for code, records in content.BY_KOMMUN.items():
        m = fed.member(code)
        parts: list[str] = []
        for record in records():
            m.node.publisher().publish(record)
            total += 1
            body = record.WhichOneof("body")
            if body == "solution":
                kind = SOLUTION_TYPE.label(record.solution.solution_type, "en").lower()
            else:
                kind = RECORD_KIND.label(record.header.kind, "en").lower()
            if body == "use_case":
                kind += f" ({USE_CASE_STATUS.label(record.use_case.status, 'en').lower()})"
            if record.header.visibility == content.MEMBERS:
                kind += " [members only]"
            elif record.header.visibility == content.DRAFT:
                kind += " [draft]"
            title = getattr(record, str(body)).title
            parts.append(f'{kind} "{title}"' if not parts else kind)
        lines.append(f"{code} {m.name:<11} " + ", ".join(parts))
        m.node.publisher().publish(content.profile(code))
    story.step(
        f"The kommuner sign and publish {total} records written from public sources "
        "(Gagnef's high-risk 'Exempelfall' is invented, and says so):"
    )
    for line in lines:
        story.more(line)
    story.more(
        "and each its kommunprofil (size, SKR kommungrupp, AI rules: Leksand accepts only "
        "minimal risk); see `samverka profile show 2029`"
    )


async def aggregate(fed: Federation, story: Story) -> None:
    from samverka_hub import recommendations

    began = time.monotonic()
    parsed = recommendations.add(fed.hub.node(), content.recommendation())
    story.step(
        f"AI-rådet publishes a recommendation signed with the hub's key: "
        f'"{parsed.record.recommendation.title}"'
    )
    # Wait until the hub holds every serving node's whole feed (drafts as stand-ins).
    expected = {m.code: _head(m.node) for m in fed.members.values() if m.aggregation != "sync"}

    def hub_has_all() -> bool:
        fed.servers.check_running()
        return all(_head_of(fed.hub, code) >= seq for code, seq in expected.items())

    await wait_until(hub_has_all, "the hub to hold every serving node's feed")
    seconds = time.monotonic() - began
    ingested = scrape_ingested(fed.addresses["metrics"])
    story.step(
        f"The hub aggregates both ways, {seconds:.1f} s after publishing "
        "(its /metrics, samverka_entries_ingested_total):"
    )
    story.more(
        f"{ingested.get('push', 0):.0f} entries pushed by Kungsbacka and Tibro, "
        f"{ingested.get('harvest', 0):.0f} harvested from Leksand's node; each verified "
        "against its origin's key"
    )


def gagnef_syncs(fed: Federation, story: Story) -> None:
    gagnef = fed.member(content.GAGNEF)
    output = samverka_cli(fed, "sync", "--dir", str(gagnef.dir))
    story.step(
        "Gagnef runs `samverka sync`: the member directory first, then every new entry "
        "from the hub, each verified against its origin's key; then its own entry goes up:"
    )
    for line in output.splitlines():
        story.more(line)


def gagnef_searches(fed: Federation, story: Story) -> None:
    from samverka.protocol.kommuner import kommun_name

    gagnef = fed.member(content.GAGNEF)
    story.step(
        "Gagnef searches its own copy of the federation, offline (as `samverka search` does), "
        "and checks each hit's signature:"
    )
    for search in content.SEARCHES:
        hits = gagnef.node.store.search(search.text, limit=5)
        wanted = [h for h in hits if (h.origin, h.record_id) == (search.origin, search.record_id)]
        if not wanted:
            found = ", ".join(f"{h.origin}/{h.record_id}" for h in hits) or "nothing"
            raise DemoError(
                f"searching {search.text!r} at Gagnef found {found}, "
                f"not {search.origin}/{search.record_id}"
            )
        stored = gagnef.node.store.get_record(search.origin, search.record_id)
        assert stored is not None
        key_id = verified_key(gagnef.node, stored)
        others = len(hits) - 1
        story.more(
            f'"{search.text}" finds {stored.origin} {kommun_name(stored.origin)}: '
            f'{_kind(stored)} "{stored.title}"' + (f" (and {others} more)" if others else "")
        )
        story.more(
            f"    signed by {kommun_name(stored.origin)}: signature verified (key id {key_id})"
        )


def gagnef_suits(fed: Federation, story: Story) -> None:
    """ "Passar er" at Gagnef, offline: the top 3 by how many similar kommuner run them,
    within its rules and interests (the ranking of `samverka passar` and the catalog)."""
    from samverka.protocol.kommuner import kommun_name
    from samverka.records.profile import suggestions

    gagnef = fed.member(content.GAGNEF)
    found = suggestions(gagnef.node.store, content.GAGNEF, limit=3)
    story.step(
        "Gagnef asks what suits it (`samverka passar`, offline; the catalog's /passar-er "
        "shows the same): what similar kommuner run, within its AI rules and interests:"
    )
    if not found:
        story.more("nothing yet: no kommun of its size or kommungrupp runs anything it fits")
    for n, s in enumerate(found, 1):
        story.more(f'{n}. {kommun_name(s.origin)}: "{s.title}" ({s.origin}/{s.record_id})')
        for reason in s.reasons:
            story.more(f"     – {reason}")


async def gagnef_adopts(fed: Federation, story: Story) -> None:
    gagnef = fed.member(content.GAGNEF)
    leksand = fed.member(content.LEKSAND)
    ref = f"{content.LEKSAND}/{content.LEKSAND_POLICY}"
    samverka_cli(
        fed, "adopt", ref, "--id", ADOPTION_ID, "--status", content.ADOPTION_STATUS,
        "--note", content.ADOPTION_NOTE, "--visibility", "public", "--dir", str(gagnef.dir),
    )  # fmt: skip
    # `samverka adopt` refuses what breaks the kommun's AI rules (without --trots-regel),
    # so this adoption fits them: "from nothing" is when this program began.
    from_nothing = time.monotonic() - STARTED
    output = samverka_cli(fed, "sync", "--dir", str(gagnef.dir))
    synced = time.monotonic()

    def leksand_has_it() -> StoredRecord | None:
        fed.servers.check_running()
        return leksand.node.store.get_record(content.GAGNEF, ADOPTION_ID)

    stored = await wait_until(leksand_has_it, "Leksand's node to receive Gagnef's adoption")
    seconds = time.monotonic() - synced
    key_id = verified_key(leksand.node, stored)
    story.step(
        f"Gagnef adopts Leksand's policy (`samverka adopt {ref} --status "
        f"{content.ADOPTION_STATUS} …`) and runs `samverka sync` again:"
    )
    for line in output.splitlines():
        if line.startswith(("skickade", "pushed")):  # the CLI speaks Swedish or English
            story.more(line)
    when = "already when the sync returns" if seconds < 0.05 else f"{seconds:.1f} s later"
    story.more(
        f"Leksand's node holds the adoption {when} (it follows the hub live): "
        f"signed by Gagnef, signature verified (key id {key_id})"
    )
    story.more(
        f"From nothing to Gagnef's first adopted solution that fits its rules: "
        f"{from_nothing:.1f} s (hub and nodes set up, enrolled, synced, adopted)"
    )


def show_visibility(fed: Federation, story: Story) -> None:
    gagnef = fed.member(content.GAGNEF)
    members_only = (content.KUNGSBACKA, "lesson-nationellt-samarbete")
    draft = (content.TIBRO, "lesson-copilot-utvardering")
    if gagnef.node.store.get_record(*members_only) is None:
        raise DemoError("Gagnef, a member, should hold Kungsbacka's members-only lesson")
    for holder in (gagnef.node.store, fed.hub.store):
        if holder.get_record(*draft) is not None:
            raise DemoError("Tibro's draft left Tibro's node")
    web = fed.addresses["web"]
    listed = web_catalog_records(web)
    leaked = {members_only, draft} & listed
    if leaked:
        raise DemoError(f"the public web catalog lists {sorted(leaked)}")
    page = web_catalog_record(web, content.LEKSAND, content.LEKSAND_POLICY)
    adopters = [a["kommunkod"] for a in page["adopters"]]
    if content.GAGNEF not in adopters or not page["signature"]["verified"]:
        raise DemoError(
            f"the web catalog's page of Leksand's policy: {page['signature']}, adopters {adopters}"
        )
    story.step(
        "Visibility: Gagnef (a member) holds Kungsbacka's members-only lesson; Tibro's draft "
        "never left Tibro (the hub keeps only its hash, so the chain still verifies)."
    )
    story.more(
        f"the public web catalog http://{web}/ lists {len(listed)} records, not those two; "
        f"its page /post/{content.LEKSAND}/{content.LEKSAND_POLICY} shows Gagnef as adopter"
    )


async def show_log(fed: Federation, story: Story) -> None:
    """The hub's transparency log as anyone fetches it (/log/checkpoint on the web port),
    cosigned by the kommuner that witness it, and the inclusion proof of Leksand's policy
    checked against it by Gagnef's rules: the log key it pinned, the kommuner's keys."""
    from samverka.protocol.inclusion import LeafClaim, verify_one
    from samverka.protocol.signing import entry_hash
    from samverka.protocol.witness import accept_checkpoint
    from samverka.replication.logstate import witnessing_for
    from samverka.transport.hubclient import HubClient

    gagnef, leksand = fed.member(content.GAGNEF), fed.member(content.LEKSAND)
    stored = leksand.node.store.get_record(content.LEKSAND, content.LEKSAND_POLICY)
    if stored is None:
        raise DemoError("Leksand's node lost its policy")
    page = leksand.node.store.read_log(stored.position - 1, 1, include_drafts=True)
    signed = page.entries[0].signed
    sequence = _entry_sequence(signed.entry)
    claim = LeafClaim.entry(content.LEKSAND, sequence, entry_hash(signed.entry))
    url = f"http://{fed.addresses['web']}/log/checkpoint"
    rules = witnessing_for(gagnef.node.config)
    began = time.monotonic()
    hub = HubClient.member(gagnef.node.config)
    try:

        async def proven() -> tuple[Any, Any] | None:
            fed.servers.check_running()
            note = await asyncio.to_thread(_http_get, url)
            try:
                accepted = accept_checkpoint(
                    note,
                    rules.log_verifier,
                    rules.witness_keys,
                    rules.self_kommun,
                    max(2, rules.quorum),
                    rules.max_age,
                    time.time(),
                    None,
                    None,
                )
            except Exception:  # not yet cosigned by enough kommuner: ask again
                return None
            try:
                proofs = await hub.get_inclusion_proofs(accepted.checkpoint.size, [claim.query()])
            except Exception:
                return None
            return accepted, proofs[0]

        accepted, proof = await wait_until_async(
            proven, "a cosigned checkpoint covering Leksand's policy"
        )
    finally:
        await hub.close()
    index = verify_one(accepted.checkpoint, claim, proof)
    seconds = time.monotonic() - began
    cosigners = sorted(accepted.signed.cosigners())
    names = ", ".join(
        f"{code} {fed.member(code).name}" for code in cosigners if code in fed.members
    )
    story.step(
        f"The hub's transparency log (C2SP checkpoint at {url}, {seconds:.1f} s to a cosigned "
        f"one): {accepted.checkpoint.size} leaves, root "
        f"{accepted.checkpoint.root_hash.hex()[:16]}…, "
        f"signed by the log key and cosigned by {len(cosigners)} kommuner as witnesses ({names})"
    )
    story.more(
        f"Gagnef checks the inclusion proof of Leksand's policy (entry #{sequence}): leaf "
        f"{index}, {len(proof.hashes)} hashes ({32 * len(proof.hashes)} bytes) lead to that root; "
        "the hub cannot show another kommun a different history without their proof of it"
    )


def _entry_sequence(entry_bytes: bytes) -> int:
    from samverka.v1 import feed_pb2

    return int(feed_pb2.Entry.FromString(entry_bytes).sequence)


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return bytes(reply.read())


def show_coverage(fed: Federation, story: Story) -> None:
    from samverka.protocol.vocab import USE_CASE_STATUS

    from samverka_hub.insight import hub_coverage

    coverage = hub_coverage(fed.hub.store, fed.hub.council.current_directory(), member_view=True)
    statuses = ", ".join(
        f"{n} {USE_CASE_STATUS.label(s, 'en').lower()}"
        for s, n in coverage.use_cases_by_status.items()
    )
    story.step(
        f"Coverage (as `samverka hub stats` counts it): {coverage.members} of "
        f"{coverage.kommuner_total} kommuner are members, {coverage.kommuner_with_use_cases} "
        f"share use cases ({coverage.share:.1%})"
    )
    story.more(
        f"{coverage.use_cases} use cases ({statuses}), {coverage.lessons} lessons, "
        f"{coverage.solutions} solutions, {coverage.adoptions} adoption, "
        f"{coverage.recommendations} council recommendation"
    )
    counties = dict.fromkeys(k.county_code for k in coverage.kommuner if k.code in fed.members)
    story.more(
        "by län: "
        + "; ".join(
            f"{c.name} {c.kommuner_with_use_cases} of {c.kommuner} share"
            for c in (coverage.county(code) for code in counties)
        )
    )


# -- helpers -----------------------------------------------------------------------------


def verified_key(node: Node, stored: StoredRecord) -> str:
    """Check the stored entry's signature against the origin's key in the node's signed
    member directory (not the store's word that it was checked); return the key id."""
    from samverka.node import load_directory
    from samverka.protocol.entries import parse_envelope

    page = node.store.read_log(stored.position - 1, 1, include_drafts=True)
    if not page.entries or not page.entries[0].HasField("signed"):
        raise DemoError(f"no signed entry for {stored.origin}/{stored.record_id}")
    signed = parse_envelope(page.entries[0].signed)
    directory = load_directory(node.config)
    key = directory.keyring().get(signed.key_id) if directory is not None else None
    if key is None or key.origin != stored.origin:
        raise DemoError(f"the directory lists no key {signed.key_id} for {stored.origin}")
    if not key.public_key.verify(signed.entry, signed.signature):
        raise DemoError(f"{stored.origin}/{stored.record_id}: the signature does not verify")
    return signed.key_id


def samverka_cli(fed: Federation, *args: str) -> str:
    """Run ``samverka ARGS…`` as a user would; its output, or DemoError."""
    proc = subprocess.run(
        [sys.executable, "-m", "samverka", *args],
        capture_output=True,
        text=True,
        env=dict(fed.servers.env),
        cwd=fed.folder,
        stdin=subprocess.DEVNULL,
        timeout=PATIENCE * 2,
    )
    if proc.returncode != 0:
        raise DemoError(
            f"`samverka {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout.strip()


async def wait_until(check: Callable[[], T | None], what: str, timeout: float = PATIENCE) -> T:
    """Poll ``check`` until it returns something true; DemoError naming ``what`` if never."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.05)


async def wait_until_async(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = PATIENCE
) -> T:
    """:func:`wait_until` for a check that awaits (a gRPC call)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.1)


def scrape_ingested(metrics_address: str) -> dict[str, float]:
    """samverka_entries_ingested_total by source, from a server's /metrics."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as reply:
        text = reply.read().decode("utf-8")
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith('samverka_entries_ingested_total{source="'):
            labels, value = line.rsplit(" ", 1)
            source = labels.split('"')[1]
            counts[source] = counts.get(source, 0.0) + float(value)
    return counts


def web_catalog_records(web_address: str) -> set[tuple[str, str]]:
    """(origin, id) of every record the public web catalog lists (its JSON API)."""
    listing = _get_json(f"http://{web_address}/api/records?per_page=100")
    return {(item["origin"], item["record_id"]) for item in listing["items"]}


def web_catalog_record(web_address: str, origin: str, record_id: str) -> Any:
    """One record as the web catalog's JSON API shows it (signature, adopters, …)."""
    return _get_json(f"http://{web_address}/api/records/{origin}/{record_id}")


def _get_json(url: str) -> Any:
    import json

    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read().decode("utf-8"))


def close_all(members: dict[str, Member]) -> None:
    for m in members.values():
        m.node.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _head(node: Node) -> int:
    head = node.store.head(node.origin)
    return head.sequence if head is not None else 0


def _head_of(hub: Hub, origin: str) -> int:
    head = hub.store.head(origin)
    return head.sequence if head is not None else 0


def _kind(stored: StoredRecord) -> str:
    from samverka.protocol.vocab import RECORD_KIND, SOLUTION_TYPE

    if stored.record.WhichOneof("body") == "solution":
        return SOLUTION_TYPE.label(stored.record.solution.solution_type, "en").lower()
    return RECORD_KIND.label(stored.kind, "en").lower()


# -- the program -------------------------------------------------------------------------


def demo_folder(keep: str) -> Path:
    """DEMO_KEEP's folder (empty or new), else a new temporary folder."""
    if not keep:
        return Path(tempfile.mkdtemp(prefix="samverka-demo-")).resolve()
    folder = Path(keep).expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DemoError(
            f"DEMO_KEEP={keep}: {folder} is not an empty folder",
            hint=f"name a new or empty folder (a demo kept there earlier is stopped with "
            f"sh {folder / 'stop.sh'})",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does: its servers are stopped."""
    import signal

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def until_interrupted(work: Awaitable[T]) -> T:
    """``work``, cancelled for good on Ctrl-C (then KeyboardInterrupt).

    asyncio.Runner's own Ctrl-C handling cancels the task once, and a cancellation that
    meets a timeout firing at the same moment can be lost on Python 3.11 (the demo then
    ran on to its end and exited 0). Here Ctrl-C cancels the work again every 0.1 s
    until it ends, and the outcome is KeyboardInterrupt whatever the work returned.
    """
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    interrupted = False

    def cancel() -> None:
        nonlocal interrupted
        interrupted = True
        if not task.done():
            task.cancel()
            loop.call_later(0.1, cancel)

    loop.add_signal_handler(signal.SIGINT, cancel)
    try:
        result = await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    if interrupted:
        raise KeyboardInterrupt
    return result


def child_env() -> dict[str, str]:
    """The environment for the demo's processes: without the caller's SAMVERKA_* settings
    (a SAMVERKA_STORE_URL meant for a real node must not reach the demo's folders)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SAMVERKA_")}


def main() -> int:
    import uvloop

    keep = os.environ.get("DEMO_KEEP", "")
    # This process opens the demo's folders too: the caller's overrides must not apply.
    for name in [k for k in os.environ if k.startswith("SAMVERKA_")]:
        del os.environ[name]
    try:
        folder = demo_folder(keep)
    except DemoError as exc:
        print(f"demo: {exc}\n  hint: {exc.hint}", file=sys.stderr)
        return 3
    story = Story()
    servers = Servers(folder, child_env(), outlive_demo=bool(keep))
    print("Samverka demo: AI-rådet's hub and four kommuner, gRPC over mutual TLS on 127.0.0.1")
    print(f"(one SQLite file each, in {folder}; server logs in {folder / 'logs'})\n", flush=True)
    succeeded = False
    fed: Federation | None = None
    try:
        with stop_signals_raise(), ExitStack() as stack:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                fed = runner.run(until_interrupted(run(folder, servers, story, stack)))
            succeeded = True
    except KeyboardInterrupt:
        print("\ndemo interrupted; stopping its servers", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure: say what, stop everything, exit 1
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        hint = getattr(exc, "hint", "")
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        print(f"  server logs: {folder / 'logs'}", file=sys.stderr)
        return 1
    finally:
        if not (keep and succeeded):
            stopped = servers.stop()
            if succeeded:
                story.step(
                    f"Stopped {stopped.servers} servers in {stopped.seconds:.1f} s"
                    + (f" (killed: {', '.join(stopped.killed)})" if stopped.killed else "")
                    + "; the demo folder is removed."
                )
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if keep and fed is not None:
        explain_kept(fed, story)
    print(f"\nDone in {story.elapsed():.1f} s.", flush=True)
    return 0


def path_line() -> list[str]:
    """``export PATH=…`` when the ``samverka`` command beside this Python is not on PATH
    (``make demo`` installs into .venv and does not activate it)."""
    command = Path(sys.executable).parent / "samverka"
    found = shutil.which("samverka")
    if not command.exists() or (found and Path(found).resolve() == command.resolve()):
        return []
    return [f"  export PATH={command.parent}:$PATH"]


def explain_kept(fed: Federation, story: Story) -> None:
    """DEMO_KEEP: write stop.sh and say how to explore and stop the federation."""
    stop = fed.folder / "stop.sh"
    fed.servers.write_stop_script(stop)
    pids = ", ".join(f"{s.name} {s.pid}" for s in fed.servers.started)
    gagnef = fed.member(content.GAGNEF).dir
    story.step("The hub and the nodes keep running (DEMO_KEEP):")
    lines = [
        f"web catalog   http://{fed.addresses['web']}/",
        f"the log       http://{fed.addresses['web']}/log/checkpoint (C2SP; its key: /log/key, "
        "tiles: /log/tile/…), cosigned by the kommuner a few seconds after each push",
        f"hub           member port {fed.addresses['member']}, public port "
        f"{fed.addresses['public']}, metrics http://{fed.addresses['metrics']}/metrics",
        f"processes     {pids} (logs in {fed.folder / 'logs'})",
        f"stop them     sh {stop}",
        "",
        "Try, as Gagnef:",
        *path_line(),
        f"  export SAMVERKA_DIR={gagnef}",
        '  samverka search "Copilot"',
        f"  samverka solution show {content.LEKSAND}/{content.LEKSAND_POLICY}",
        "  samverka usecase list --all-origins",
        '  samverka search --hub "AI-policy"',
        '  samverka usecase add --title "Språkmodell som stöd i bygglovshandläggningen" '
        '--summary "Idé att pröva tillsammans med grannkommunerna" --area urban-planning '
        "--status idea --visibility members && samverka sync",
        "As AI-rådet:",
        f"  samverka hub stats --dir {fed.folder / 'hub'}",
        f"  samverka hub members list --dir {fed.folder / 'hub'}",
    ]
    for line in lines:
        story.more(line)
