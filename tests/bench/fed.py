"""The benchmark federation: a hub with all 290 kommuner enrolled, and their signed feeds.

Everything here is made once and cached under ``.bench-cache/`` (gitignored), because
signing 300,000 entries and enrolling 290 members takes minutes:

- ``template/hub``: a hub folder (``init_hub``) with the 290 kommuner admitted
  through the council's own enrollment path (signed request, CSR, approval);
- ``template/nodes/<kod>``: each kommun's node folder (``init_node``) completed as
  ``samverka node enroll`` completes it: member TLS certificate, the hub's CA,
  pinned hub key and the final signed directory;
- ``entries-<N>.bin``: N signed entries in round-robin order over the 290 origins
  (entry k is origin k mod 290, so every prefix is a valid set of feeds), each a new
  UseCase with Swedish text, length-prefixed SignedEntry bytes;
- ``hub-<N>``: copies of the hub folder holding the first N entries (loaded through
  ``samverka.replication.ingest``, the hub's own path), for the figures that need a full hub.

The dataset depends only on the template's keys; delete ``.bench-cache`` to start over.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from samverka.protocol.entries import build_entry, sign_entry
from samverka.protocol.kommuner import kommuner
from samverka.protocol.signing import GENESIS_HASH, SigningKey, entry_hash
from samverka.v1 import feed_pb2, records_pb2

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SAMVERKA_BENCH_CACHE", ROOT / ".bench-cache"))
ORIGINS: list[str] = sorted(kommuner())
#: Entry k is dated T0 + k ms (fixed, in the past: entries verify with any clock).
T0_MS = 1_767_225_600_000

# -- Swedish text --------------------------------------------------------------------------

WORDS = [
    "äldreomsorg",
    "hemtjänst",
    "schemaläggning",
    "skola",
    "förskola",
    "bygglov",
    "ekonomi",
    "fakturor",
    "chattbot",
    "språkmodell",
    "översättning",
    "tolkning",
    "socialtjänst",
    "försörjningsstöd",
    "handläggning",
    "beslutsstöd",
    "journalföring",
    "dokumentation",
    "upphandling",
    "avtal",
    "kontaktcenter",
    "medborgare",
    "felanmälan",
    "gatubelysning",
    "vatten",
    "avlopp",
    "avfall",
    "rekrytering",
    "lönehantering",
    "sjukfrånvaro",
    "prognos",
    "kommunikation",
    "digitalisering",
    "automatisering",
    "robot",
    "bildanalys",
    "taligenkänning",
    "transkribering",
    "sammanfattning",
    "protokoll",
    "nämnd",
    "fullmäktige",
    "diarium",
    "arkiv",
    "informationssäkerhet",
    "personuppgifter",
    "konsekvensbedömning",
    "riskbedömning",
    "pilot",
    "utvärdering",
    "nytta",
    "timmar",
    "besparing",
    "kvalitet",
    "tillgänglighet",
    "klarspråk",
    "elever",
    "lärare",
    "betyg",
    "frånvaro",
    "matsedel",
    "skolskjuts",
    "räddningstjänst",
    "larm",
    "brandskydd",
    "miljötillsyn",
    "livsmedel",
    "kontroll",
    "inspektion",
    "detaljplan",
    "karta",
    "geodata",
    "lantmäteri",
    "fastighet",
    "energi",
    "uppvärmning",
    "lokaler",
    "städning",
    "parkering",
    "trafik",
]
#: Queries: one real word, or two.
ONE_WORD_QUERIES = WORDS
SYLLABLES = [
    "sk",
    "ka",
    "lä",
    "ök",
    "nin",
    "gar",
    "för",
    "vål",
    "tjä",
    "ber",
    "ord",
    "mål",
    "sam",
    "häl",
    "rå",
    "ström",
]


def _vocabulary(seed: int = 7, size: int = 5_000) -> tuple[list[str], list[float]]:
    """WORDS among made-up Swedish-looking words with Zipf frequencies (real text is
    Zipfian: a few words everywhere, most rare; the real words sit at spread ranks)."""
    rng = random.Random(seed)
    made_up = {
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size)
    }
    words = sorted(made_up - set(WORDS))
    rng.shuffle(words)
    step = len(words) // len(WORDS)
    for i, word in enumerate(WORDS):
        words.insert(i * step, word)
    return words, [1 / (rank + 1) for rank in range(len(words))]


VOCABULARY, WEIGHTS = _vocabulary()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(VOCABULARY, WEIGHTS, k=n)).capitalize()


def make_record(rng: random.Random, origin: str, record_id: str, t: int) -> records_pb2.Record:
    """A new Swedish UseCase (4 in 5 PUBLIC, the rest MEMBERS)."""
    return records_pb2.Record(
        header=records_pb2.RecordHeader(
            id=record_id,
            kind=records_pb2.RECORD_KIND_USE_CASE,
            origin=origin,
            version=1,
            created_at_ms=t,
            updated_at_ms=t,
            visibility=rng.choice(
                [records_pb2.VISIBILITY_PUBLIC] * 4 + [records_pb2.VISIBILITY_MEMBERS]
            ),
            language="sv",
            tags=rng.sample(VOCABULARY[:200], k=2),
        ),
        use_case=records_pb2.UseCase(
            title=sentence(rng, 5),
            summary=sentence(rng, 20),
            description=sentence(rng, 60),
            service_area=rng.randint(1, 18),  # type: ignore[arg-type]
            status=rng.randint(1, 4),  # type: ignore[arg-type]
            risk_class=rng.randint(1, 4),  # type: ignore[arg-type]
            techniques=rng.choices(VOCABULARY[:100], k=1),
            products=["Copilot"],
        ),
    )


# -- the template: hub + 290 enrolled nodes -------------------------------------------------


@dataclass(frozen=True)
class Template:
    dir: Path

    @property
    def hub(self) -> Path:
        return self.dir / "hub"

    def node(self, code: str) -> Path:
        return self.dir / "nodes" / code

    def signing_key(self, code: str) -> SigningKey:
        return SigningKey.from_pem((self.node(code) / "keys" / "signing.key").read_bytes())


def template(log: callable = print) -> Template:  # type: ignore[valid-type]
    tpl = Template(CACHE / "template")
    if (tpl.dir / "done").exists():
        return tpl
    if tpl.dir.exists():
        shutil.rmtree(tpl.dir)
    log(f"making the federation template (hub + {len(ORIGINS)} enrolled nodes) in {tpl.dir} …")
    started = time.monotonic()
    _make_template(tpl)
    (tpl.dir / "done").write_text("ok\n")
    log(f"  template ready in {time.monotonic() - started:.0f} s")
    return tpl


def _make_template(tpl: Template) -> None:
    from samverka.membership.enrollment import build_enrollment_request
    from samverka.membership.member import (
        DIRECTORY_FILE,
        HUB_KEY_FILE,
        set_hub_address,
        write_file,
    )
    from samverka.node import init_node
    from samverka.transport.pki import DEFAULT_HOSTS, create_csr
    from samverka_hub.folder import init_hub

    tpl.dir.mkdir(parents=True)
    hub = init_hub(tpl.hub, member_listen="127.0.0.1:0", public_listen="127.0.0.1:0")
    ca_pem = (tpl.hub / "tls" / "ca.pem").read_bytes()
    try:
        issued: dict[str, tuple[bytes, bytes]] = {}
        for code in ORIGINS:
            node = init_node(tpl.node(code), code, listen="127.0.0.1:0")
            try:
                csr = create_csr(code, hosts=list(DEFAULT_HOSTS))
                request = build_enrollment_request(
                    node.signing_key,
                    kommunkod=code,
                    csr_der=csr.csr_der,
                    created_at_ms=time.time_ns() // 1_000_000,
                    contact_role="IT-chef",
                )
                hub.council.submit_enrollment(request)
                admission = hub.council.approve(code)
                issued[code] = (csr.key_pem, admission.certificate_pem)
            finally:
                node.close()
        directory = hub.council.current_directory()
        assert directory is not None
        hub_pub = hub.signing_key.public.to_pem()
        for code, (key_pem, cert_pem) in issued.items():
            folder = tpl.node(code)
            write_file(folder / HUB_KEY_FILE, hub_pub, mode=0o644)
            write_file(folder / DIRECTORY_FILE, directory.signed_bytes(), mode=0o644)
            write_file(folder / "tls" / "node.key", key_pem, mode=0o600)
            write_file(folder / "tls" / "node.pem", cert_pem, mode=0o644)
            write_file(folder / "tls" / "ca.pem", ca_pem, mode=0o644)
            set_hub_address(folder / "samverka.toml", "127.0.0.1:1")  # set per run
    finally:
        hub.close()


# -- the dataset ----------------------------------------------------------------------------


def _sign_origin(args: tuple[str, bytes, int, int]) -> list[bytes]:
    """Entries 1..count of one origin (serialized SignedEntry), for a process pool."""
    origin, key_pem, index, count = args
    key = SigningKey.from_pem(key_pem)
    rng = random.Random(index)
    prev = GENESIS_HASH
    out = []
    for seq in range(1, count + 1):
        t = T0_MS + (seq - 1) * len(ORIGINS) + index  # entry k = (seq-1)*290 + index
        record = make_record(rng, origin, f"uc-{origin}-{seq}", t)
        raw = build_entry(
            origin=origin, sequence=seq, previous_hash=prev, timestamp_ms=t, record=record
        )
        prev = entry_hash(raw)
        out.append(sign_entry(key, raw).SerializeToString(deterministic=True))
    return out


def dataset(tpl: Template, size: int, log: callable = print) -> list[bytes]:  # type: ignore[valid-type]
    """The first ``size`` entries (serialized SignedEntry), from the smallest cached
    file that holds them, generating one if none does."""
    files = sorted(
        (int(p.stem.split("-")[1]), p) for p in CACHE.glob("entries-*.bin") if p.stem[8:].isdigit()
    )
    for n, path in files:
        if n >= size:
            return read_entries(path, size)
    per_origin = -(-size // len(ORIGINS))
    total = per_origin * len(ORIGINS)
    log(f"signing {total:,} entries for {len(ORIGINS)} origins (cached for later runs) …")
    started = time.monotonic()
    jobs = [
        (code, (tpl.node(code) / "keys" / "signing.key").read_bytes(), i, per_origin)
        for i, code in enumerate(ORIGINS)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        feeds = list(pool.map(_sign_origin, jobs, chunksize=8))
    path = CACHE / f"entries-{total}.bin"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for seq in range(per_origin):
            for feed in feeds:
                f.write(struct.pack(">I", len(feed[seq])))
                f.write(feed[seq])
    tmp.rename(path)
    log(f"  signed in {time.monotonic() - started:.0f} s")
    return read_entries(path, size)


def read_entries(path: Path, limit: int) -> list[bytes]:
    out: list[bytes] = []
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data) and len(out) < limit:
        (n,) = struct.unpack_from(">I", data, at)
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    return out


@dataclass
class Chain:
    """Where each origin's feed stands after a prefix of the dataset, to sign more."""

    tpl: Template
    heads: dict[str, tuple[int, bytes, int]]  # origin -> (sequence, hash, timestamp)

    @classmethod
    def after(cls, tpl: Template, entries: Sequence[bytes]) -> Chain:
        heads: dict[str, tuple[int, bytes, int]] = {}
        for raw in entries[-len(ORIGINS) :]:
            signed = feed_pb2.SignedEntry.FromString(raw)
            entry = feed_pb2.Entry.FromString(signed.entry)
            heads[entry.origin] = (entry.sequence, entry_hash(signed.entry), entry.timestamp_ms)
        return cls(tpl, heads)

    def next(self, origin: str, key: SigningKey, *, tag: str = "new") -> feed_pb2.SignedEntry:
        seq, prev, ts = self.heads.get(origin, (0, GENESIS_HASH, T0_MS))
        t = max(ts + 1, time.time_ns() // 1_000_000 - 1000)
        record = make_record(random.Random(seq), origin, f"{tag}-{origin}-{seq + 1}", t)
        raw = build_entry(
            origin=origin, sequence=seq + 1, previous_hash=prev, timestamp_ms=t, record=record
        )
        self.heads[origin] = (seq + 1, entry_hash(raw), t)
        return sign_entry(key, raw)


def batches(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- loaded hubs ----------------------------------------------------------------------------


def copy_folder(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
    if (dst / "ca" / "ca.key").exists():
        # A copied hub's database is another database than the one that signed its
        # directory: here each copy is a hub of its own, so it may sign (hub promote).
        from samverka_hub.folder import open_hub

        hub = open_hub(dst)
        try:
            hub.council.promote(reason="bench copy")
        finally:
            hub.close()
    return dst


def loaded_hub(tpl: Template, size: int, log: callable = print) -> Path:  # type: ignore[valid-type]
    """A hub folder holding the first ``size`` entries (cached; copy before serving)."""
    target = CACHE / f"hub-{size}"
    if (target / "done").exists():
        return target
    entries = dataset(tpl, size, log)
    # Start from the largest smaller loaded hub, else from the template.
    smaller = sorted(
        (int(p.name[4:]), p)
        for p in CACHE.glob("hub-*")
        if p.name[4:].isdigit() and (p / "done").exists() and int(p.name[4:]) < size
    )
    base, held = (smaller[-1][1], smaller[-1][0]) if smaller else (tpl.hub, 0)
    log(f"loading a hub with {size:,} entries (from {held:,}; cached) …")
    started = time.monotonic()
    copy_folder(base, target)
    (target / "done").unlink(missing_ok=True)
    load_into(target, entries[held:])
    (target / "done").write_text("ok\n")
    log(f"  loaded in {time.monotonic() - started:.0f} s")
    return target


def load_into(hub_dir: Path, entries: Sequence[bytes], *, store_url: str = "") -> None:
    """Ingest entries into a hub's store in-process (the hub's verification path)."""
    from samverka.replication.ingest import ingest
    from samverka.store.store import Store
    from samverka_hub.folder import open_hub

    hub = open_hub(hub_dir)
    try:
        directory = hub.council.current_directory()
        assert directory is not None
        keys = directory.keyring()
        store = hub.store if not store_url else Store.open(store_url)
        try:
            for batch in batches(entries, 500):
                report = ingest(store, keys, list(batch), source="bench")
                if not report.ok:
                    raise RuntimeError(f"loading refused an entry: {report.first_refusal}")
        finally:
            if store_url:
                store.close()
        with hub.store.engine.connect() as conn:
            if not hub.store.is_postgres:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        hub.close()
