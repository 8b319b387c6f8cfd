"""Erasure that propagates, end to end (issue 13, point 3, acceptance).

Two hub replicas on one PostgreSQL database (replica B a copy of A's folder, as in
test_replicas.py), each serving the web catalog (``hub serve`` processes); Leksand and
Gagnef as nodes on their folders. Leksand publishes records with unique texts, both sync;
Leksand erases one (``samverka usecase erase``), and the council erases another on
Leksand's request (``samverka hub erase``): those two commands run as ``samverka``
processes. The commands around them (push, sync, search, bundle export, crosscheck, the
erasure list) run the same root command in this process (hubkit.Procs.run_here: a process
start less each, ~1.2 s here). After a push and a sync:

- the text is in no database file (the nodes' SQLite files and WALs, the relation files
  of the hub's PostgreSQL tables) and no answer (gRPC log reads of both replicas, both
  catalogs' search, record pages, JSON API and Atom feeds, a bundle exported afterwards);
- every feed still verifies from scratch (a fresh store ingests each holder's log with
  the directory's keys, as a node joining afterwards would);
- ``samverka crosscheck`` still agrees, and the transparency log (checked by the
  independent tests/tlogcheck.py) is consistent with the checkpoint before the erasure.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tlogcheck
from aggkit import Member, author, database_bytes, enroll, open_store
from hubkit import Procs, RunningHub, hub_env, run_async, start_hub, wait_for
from pgserver import PgServer, relation_bytes
from samverka.protocol.directory import keyring_from_directory
from samverka.replication.ingest import ingest
from samverka.store.store import Store
from samverka.transport.client import FeedClient
from samverka_hub.folder import open_hub

sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))

from opskit import init_hub_here

LEKSAND, GAGNEF = "2029", "2026"
#: Unique texts: in a record Leksand erases, and in one the council erases on its request.
SECRET = "Zebulonsson7f3a"
SECRET_2 = "Quillbottom91c"
KEPT = "Lingonrensare"


@dataclass
class Federation:
    procs: Procs
    a: RunningHub
    b: RunningHub
    web_a: str
    web_b: str
    url: str
    nodes: dict[str, Member]


def web_address(procs: Procs, name: str) -> str:
    return str(json.loads((procs.tmp / f"{name}.addresses").read_text())["web"])


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer) -> Iterator[Federation]:
    with pg_server.database("samverka_e") as name:
        url = pg_server.url(name)
        tmp = tmp_path_factory.mktemp("erasure")
        env = hub_env(SAMVERKA_HARVEST_ENABLED="false", SAMVERKA_WEB_LISTEN="127.0.0.1:0")
        procs = Procs(tmp, env)
        try:
            # hubkit.start_replicas, with `hub init` as init_hub in this process.
            a_dir, b_dir = tmp / "hub-a", tmp / "hub-b"
            init_hub_here(procs, a_dir, store_url=url)
            shutil.copytree(a_dir, b_dir)
            a = start_hub(procs, a_dir, name="replica-a")
            b = start_hub(procs, b_dir, name="replica-b")
            nodes = {code: enroll(procs, a, code) for code in (LEKSAND, GAGNEF)}
            yield Federation(
                procs, a, b, web_address(procs, "replica-a"), web_address(procs, "replica-b"),
                url, nodes,
            )  # fmt: skip
        finally:
            procs.stop_all()


def get(web: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{web}{path}", timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


#: What the catalog answers, page by page (search, record pages, JSON API, Atom feeds).
#: (Not a search for the text itself: the search page repeats its query.)
PAGES = (
    "/sok?q=bygglov",
    "/sok?q=Schemal%C3%A4ggning",
    f"/post/{LEKSAND}/uc-secret",
    f"/post/{LEKSAND}/uc-council",
    "/api/records?q=bygglov",
    "/api/records",
    f"/api/records/{LEKSAND}/uc-secret",
    f"/kommun/{LEKSAND}",
    "/api/techniques",
    "/flode.atom",
    f"/flode/kommun/{LEKSAND}.atom",
)


def answers(web: str) -> bytes:
    return b"".join(get(web, path)[1] for path in PAGES)


def hub_log_bytes(fed: Federation, address: str) -> bytes:
    """Everything a member reads from a replica's log over gRPC (GetEntries)."""
    gagnef = fed.nodes[GAGNEF]

    async def read() -> bytes:
        async with FeedClient.connect(address, gagnef.tls()) as feed:
            pages = [page async for page in feed.read_entries(after=0)]
        return b"".join(e.SerializeToString() for page in pages for e in page.entries)

    return run_async(read())


def pg_bytes(fed: Federation) -> bytes:
    """The relation files (and TOAST) of the hub's store tables, read by the server."""
    with Store.open(fed.url, migrate=False) as store, store.engine.connect() as conn:
        return relation_bytes(conn)


def sync(fed: Federation, code: str) -> dict[str, object]:
    return dict(fed.procs.json_here("sync", "--dir", str(fed.nodes[code].dir)))


def verifies_from_scratch(fed: Federation, store: Store, tmp: Path) -> None:
    """A fresh store takes the holder's whole log, verifying every signature and link."""
    with open_hub(fed.a.dir) as hub:
        directory = hub.council.current_directory()
    assert directory is not None
    keys = keyring_from_directory(directory.directory)
    items = [
        e.signed if e.HasField("signed") else e.redacted for e in store.read_log(0, 10_000).entries
    ]
    with Store.open(f"sqlite:///{tmp / f'check-{secrets.token_hex(3)}.db'}") as fresh:
        report = ingest(fresh, keys, items, source="test")
        assert report.ok, report.first_refusal
        for head in store.heads():
            assert fresh.feed_digest(head.origin) == store.feed_digest(head.origin)


@pytest.mark.timeout(300)  # ~8 s on an idle machine (24 s with every command a process)
def test_erasure_reaches_every_holder_and_the_chains_still_verify(
    fed: Federation, tmp_path: Path
) -> None:
    procs = fed.procs
    leksand, gagnef = fed.nodes[LEKSAND], fed.nodes[GAGNEF]
    author(leksand, "uc-secret", title="Chattbot för bygglov", summary=f"Kontakt {SECRET}")
    author(leksand, "uc-kept", title="Bygglov med AI", summary=KEPT)
    author(
        leksand, "uc-secret", title="Chattbot för bygglov", summary=f"Ring {SECRET} direkt",
        techniques=[f"Språkmodell {SECRET}"],
    )  # fmt: skip
    author(leksand, "uc-council", title="Schemaläggning", summary=f"Ansvarig {SECRET_2}")
    procs.json_here("node", "push", "--dir", str(leksand.dir))
    for code in (GAGNEF, LEKSAND):
        sync(fed, code)
    # Everyone holds both texts; both replicas' catalogs show them.
    for member in (gagnef, leksand):
        with open_store(member.dir) as store:
            assert [h.record_id for h in store.search(SECRET)] == ["uc-secret"]
    assert SECRET.encode() in answers(fed.web_b) and SECRET_2.encode() in answers(fed.web_a)
    assert SECRET.encode() in pg_bytes(fed)
    before_search = procs.run_here("search", "--hub", "bygglov", "--json", "--dir", str(gagnef.dir))
    assert SECRET in before_search.stdout
    log_key = get(fed.web_a, "/log/key")[1].decode().strip()
    _, before = tlogcheck.check_log(tlogcheck.http_fetcher(f"http://{fed.web_b}/log/"), log_key)

    # Leksand erases one record; the council erases another on Leksand's request.
    erased = procs.json(
        "usecase", "erase", "uc-secret", "--reason", "personuppgifter",
        "--note", "namn i sammanfattningen", "--dir", str(leksand.dir),
    )  # fmt: skip
    assert [e["sequence"] for e in erased["erased"]] == [1, 3]
    procs.json_here("node", "push", "--dir", str(leksand.dir))
    done = procs.run(
        "hub", "erase", LEKSAND, "uc-council", "--reason", "personuppgifter",
        "--request-ref", "KS 2026/114", "--dir", str(fed.b.dir), "--json",
    )  # fmt: skip
    council = json.loads(done.stdout)
    audit = [json.loads(line) for line in done.stderr.splitlines() if "council_erasure" in line]
    assert [a["event"] for a in audit] == ["council_erasure"]
    assert "uc-council" in audit[0]["message"] and "KS 2026/114" in audit[0]["message"]
    assert audit[0]["request_ref"] == "KS 2026/114" and audit[0]["record_id"] == "uc-council"
    assert audit[0]["erasure"].startswith("0000#") and audit[0]["reason"] == "personuppgifter"
    assert council["erasure"].startswith("0000#") and council["request_ref"] == "KS 2026/114"
    listed = procs.json_here("hub", "erase", "list", "--dir", str(fed.a.dir))
    assert {(r["origin"], r["record_id"]) for r in listed} == {
        (LEKSAND, "uc-secret"),
        (LEKSAND, "uc-council"),
    }
    for code in (GAGNEF, LEKSAND):
        report = sync(fed, code)
        assert report.get("refused", {}) in ({}, 0, None), report

    # Nowhere any more: database files, gRPC answers, catalogs, a bundle made afterwards.
    for member in (gagnef, leksand):
        held = database_bytes(member.dir)
        assert SECRET.encode() not in held and SECRET_2.encode() not in held, member.code
        with open_store(member.dir) as store:
            assert store.search(SECRET) == [] and store.get_record(LEKSAND, "uc-secret") is None
            assert store.get_record(LEKSAND, "uc-council") is None
            assert store.get_record(LEKSAND, "uc-kept") is not None
            verifies_from_scratch(fed, store, tmp_path)
    # The hub purges the files in the background after an erasure arrives (store-purge):
    # wait for its durable mark, not for a time.
    with Store.open(fed.url, migrate=False) as hub_store:
        wait_for(lambda: not hub_store.purge_pending(), 60, "the hub's purge")
    in_pg = pg_bytes(fed)
    assert SECRET.encode() not in in_pg and SECRET_2.encode() not in in_pg
    assert KEPT.encode() in in_pg
    for address in (fed.a.member, fed.b.member):
        read = hub_log_bytes(fed, address)
        assert (
            SECRET.encode() not in read and SECRET_2.encode() not in read and KEPT.encode() in read
        )
    # The federation-wide search at the hub (HubService.Search), as staff run it.
    for words in ("bygglov", "Schemaläggning"):
        found = procs.run_here("search", "--hub", words, "--json", "--dir", str(gagnef.dir)).stdout
        assert SECRET not in found and SECRET_2 not in found
    for web in (fed.web_a, fed.web_b):
        shown = answers(web)
        assert SECRET.encode() not in shown and SECRET_2.encode() not in shown
        assert KEPT.encode() in shown
        assert get(web, f"/post/{LEKSAND}/uc-secret")[0] == 404
        for text in (SECRET, SECRET_2):
            assert json.loads(get(web, f"/api/records?q={text}")[1])["total"] == 0
    bundle = tmp_path / "gagnef.samverka"
    procs.json_here("bundle", "export", "--out", str(bundle), "--dir", str(gagnef.dir))
    assert SECRET.encode() not in bundle.read_bytes()
    assert SECRET_2.encode() not in bundle.read_bytes()

    # The hub's store verifies from scratch too (what a node joining now would take).
    with Store.open(fed.url, migrate=False) as hub_store:
        verifies_from_scratch(fed, hub_store, tmp_path)
    # Crosscheck still agrees; the log is consistent with the one before the erasure.
    checked = procs.run_here("crosscheck", "--dir", str(gagnef.dir), "--json", check=False)
    assert checked.returncode == 0, checked
    assert json.loads(checked.stdout)["status"] == "agree"
    report, _ = tlogcheck.check_log(
        tlogcheck.http_fetcher(f"http://{fed.web_b}/log/"), log_key, previous=before, audit_all=True
    )
    assert report.consistency is not None
