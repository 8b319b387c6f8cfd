"""The transparency log's figures for ``make bench`` (issue 11).

1. **Ingest with and without the log, in the same run.** The hub's verification path
   (``ingest()``, batches of 500 as Publish hands them over) into two copies of the same
   hub folder: once alone, once with the log's sequencer appending beside it exactly as
   the hub's :class:`~samverka_hub.tlog.Sequencer` does (a round after each settle
   interval, on its own connection, same SQLite file). Alternated runs, medians. The
   target: the log costs at most 10 % of ingest. Also: how long after the last batch
   every entry stands in a signed checkpoint (the log's lag).
2. **Proofs at 100k and 1M leaves**: RFC 9162 inclusion proofs of sampled leaves and a
   consistency proof from half the tree, computed from stored hashes (the hub's layout,
   held in memory here so the figure is the algorithm, not the disk) and verified as a
   node verifies them: bytes on the wire, microseconds to compute and to verify.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fed
from samverka.protocol import merkle


def _ingest_run(hub_dir: Path, entries: Sequence[bytes], *, with_log: bool) -> dict[str, float]:
    from samverka.replication.ingest import ingest
    from samverka_hub.folder import open_hub
    from samverka_hub.tlog import SETTLE_SECONDS, ensure_log_key, sequence_once

    hub = open_hub(hub_dir)
    try:
        directory = hub.council.current_directory()
        assert directory is not None
        keys = directory.keyring()
        engine = hub.store.engine
        stop = threading.Event()
        rounds: list[float] = []

        def sequencer() -> None:
            signer = ensure_log_key(hub_dir, "bench.invalid")
            while not stop.is_set():
                t = time.perf_counter()
                if sequence_once(engine, signer):
                    rounds.append(time.perf_counter() - t)
                stop.wait(SETTLE_SECONDS)

        worker = threading.Thread(target=sequencer, daemon=True) if with_log else None
        if worker is not None:
            worker.start()
        started = time.perf_counter()
        for batch in fed.batches(entries, 500):
            report = ingest(hub.store, keys, list(batch), source="bench")
            assert report.ok, report.first_refusal
        ingest_seconds = time.perf_counter() - started
        lag = 0.0
        if worker is not None:
            stop.set()
            worker.join()
            # What the sequencer has not yet appended when ingest ends: its lag.
            t = time.perf_counter()
            signer = ensure_log_key(hub_dir, "bench.invalid")
            while sequence_once(engine, signer):
                pass
            lag = time.perf_counter() - t
        return {
            "rate": len(entries) / ingest_seconds,
            "lag_s": lag,
            "rounds": len(rounds),
            "round_ms_median": 1000 * statistics.median(rounds) if rounds else 0.0,
        }
    finally:
        hub.close()


def fig_tlog_ingest(args: argparse.Namespace, tpl: fed.Template, raw: Any) -> list[Any]:
    from run import WORK, Figure, say

    count = args.ingest
    entries = fed.dataset(tpl, count, say)[:count]
    without, with_log, lags, round_ms = [], [], [], []
    for i in range(args.repeat):
        for flag in (False, True):  # alternated, so drift of the machine hits both
            hub_dir = fed.copy_folder(tpl.hub, WORK / f"tlog-ingest-{int(flag)}")
            result = _ingest_run(hub_dir, entries, with_log=flag)
            (with_log if flag else without).append(result["rate"])
            if flag:
                lags.append(result["lag_s"])
                round_ms.append(result["round_ms_median"])
        say(
            f"  run {i + 1}: without the log {without[-1]:,.0f}/s, "
            f"with it {with_log[-1]:,.0f}/s, lag {lags[-1]:.2f} s"
        )
    plain, logged = statistics.median(without), statistics.median(with_log)
    cost = 1 - logged / plain
    return [
        Figure(
            "hub ingest with the transparency log",
            logged,
            "entries/s",
            plain,
            logged / plain,
            {
                "entries": count,
                "batch": 500,
                "without_log_runs": without,
                "with_log_runs": with_log,
                "log_cost_pct": round(100 * cost, 1),
                "log_lag_after_ingest_s": lags,
                "sequencer_round_ms_median": round_ms,
                "store": "sqlite",
                "limit_is": "the same ingest without the log, same run",
            },
            "the log costs at most 10 % of ingest",
            cost <= 0.10,
        )
    ]


def _build_tree(size: int, seed: int = 11) -> tuple[dict[int, bytes], list[bytes]]:
    """Stored hashes of a tree of ``size`` random 46-byte leaves (the leaf size of
    an entry commitment), in the hub's stored-hash layout."""
    rng = random.Random(seed)
    stored: dict[int, bytes] = {}

    def read(indexes: Sequence[int]) -> list[bytes]:
        return [stored[i] for i in indexes]

    leaves = []
    for n in range(size):
        leaf = rng.randbytes(46)
        leaves.append(leaf)
        first = merkle.stored_hash_index(0, n)
        for k, h in enumerate(merkle.stored_hashes(n, leaf, read)):
            stored[first + k] = h
    return stored, leaves


def fig_tlog_proofs(args: argparse.Namespace, tpl: fed.Template, raw: Any) -> list[Any]:
    from run import Figure, say

    figures = []
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    for size in sizes:
        t = time.perf_counter()
        stored, leaves = _build_tree(size)
        say(f"  tree of {size:,} leaves built in {time.perf_counter() - t:.1f} s")

        def read(indexes: Sequence[int], stored: dict[int, bytes] = stored) -> list[bytes]:
            return [stored[i] for i in indexes]

        root = merkle.tree_hash(size, read)
        rng = random.Random(size)
        sample = [rng.randrange(size) for _ in range(1000)]
        make_us, check_us, lengths = [], [], []
        for index in sample:
            t = time.perf_counter()
            proof = merkle.inclusion_proof(size, index, read)
            make_us.append(1e6 * (time.perf_counter() - t))
            t = time.perf_counter()
            merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
            check_us.append(1e6 * (time.perf_counter() - t))
            lengths.append(len(proof))
        old = size // 2 + 1
        old_root = merkle.tree_hash(old, read)
        t = time.perf_counter()
        consistency = merkle.consistency_proof(old, size, read)
        cons_make = 1e6 * (time.perf_counter() - t)
        t = time.perf_counter()
        merkle.verify_consistency(old, size, old_root, root, consistency)
        cons_check = 1e6 * (time.perf_counter() - t)
        worst = max(lengths) * merkle.HASH_SIZE
        figures.append(
            Figure(
                f"inclusion proof at {size:,} leaves",
                worst,
                "bytes (largest of 1,000 sampled)",
                parameters={
                    "leaves": size,
                    "hashes_max": max(lengths),
                    "compute_us_median": round(statistics.median(make_us), 1),
                    "verify_us_median": round(statistics.median(check_us), 1),
                    "consistency_from": old,
                    "consistency_bytes": len(consistency) * merkle.HASH_SIZE,
                    "consistency_compute_us": round(cons_make, 1),
                    "consistency_verify_us": round(cons_check, 1),
                    "stored_hashes": len(stored),
                    "pid": os.getpid(),
                },
                target="log2(n) hashes: ≤ 32 × ⌈log2 n⌉ bytes",
                meets=worst <= merkle.HASH_SIZE * (size - 1).bit_length(),
            )
        )
        say(
            f"  {size:,}: inclusion ≤ {worst} B, {statistics.median(make_us):.0f} µs to make, "
            f"{statistics.median(check_us):.0f} µs to verify; consistency "
            f"{len(consistency) * merkle.HASH_SIZE} B"
        )
        del stored, leaves
    return figures
