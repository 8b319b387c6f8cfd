"""``make soak``: the long attack, fault, fuzz and load runs, and one table of results.

Runs pytest once with ``HYPOTHESIS_PROFILE=soak`` (20,000 cases per property, 10,000
entries in the crash tests, 290 nodes and 290 subscribers in the load test) over:

- tests/attacks, tests/faults, tests/load (they append their results to a file, see
  tests/attacks/soakresults.py);
- the in-memory mutation suite (tests/core/test_mutations.py);
- the network attack tests that live with the features they guard (EXISTING below);

then prints the table: attacks tried and refused, fuzz cases (accepted mutants and
crashes must be 0), faults survived, entries lost (must be 0), peak hub memory, and
keeps it with every recorded result in soak-results.json. Exits non-zero when pytest
failed or any of those invariants does not hold.

PostgreSQL comes as in every pytest run (``pg_server``, tests/conftest.py and
tests/pgserver.py): the server ``SAMVERKA_TEST_PG`` names, else a throwaway cluster that
the run starts and stops.

    .venv/bin/python tests/load/soak.py              # what make soak runs
    .venv/bin/python tests/load/soak.py -- -x        # extra pytest arguments after --
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The last run's table and every recorded result (git-ignored).
RESULTS_FILE = ROOT / "soak-results.json"

#: Attacks already shown against real processes next to the features they guard.
EXISTING = {
    "tests/hub/test_aggregation_e2e.py::test_refusals_are_answered_precisely_and_counted_by_reason":
        "bad signature, unknown key, sequence gap pushed to the hub",
    "tests/hub/test_aggregation_e2e.py::test_an_entry_altered_at_the_hub_is_caught_by_the_syncing_node":
        "an entry altered in the hub's database",
    "tests/hub/test_aggregation_e2e.py::test_the_public_port_never_sends_a_members_record":
        "MEMBERS records and Publish on the public port",
    "tests/hub/test_aggregation_e2e.py::test_pushing_again_changes_nothing":
        "replay of a whole feed",
    "tests/hub/test_membership_e2e.py::test_member_port_needs_a_member_certificate":
        "no client certificate, a certificate from another CA",
    "tests/hub/test_membership_e2e.py::test_revocation":
        "a revoked member's calls and later entries",
    "tests/hub/test_membership_e2e.py::test_node_refuses_an_older_directory":
        "a rolled-back member directory",
    "tests/server/test_plumbing.py::test_clients_outside_our_ca_are_refused":
        "a node's member port: no certificate, another CA",
    "tests/server/test_plumbing.py::test_message_size_limits":
        "a node's message size limits",
    "tests/cli/test_import_cli.py::test_yaml_that_constructs_objects_is_refused":
        "YAML tags that construct objects",
    "tests/cli/test_bundle_cli.py::test_a_tampered_entry_stops_the_import_there":
        "a tampered offline bundle",
    "tests/web/test_security.py::test_csv_formulas_behind_invisible_or_fullwidth_characters_are_neutralized":
        "CSV export: formulas behind spaces, zero-width or fullwidth characters",
    "tests/web/test_security.py::test_csv_links_never_follow_the_host_header":
        "CSV export: links from a forged Host header",
    "tests/hub/test_renewal_limit.py::test_renewals_are_capped_per_member_across_replicas":
        "RenewCertificate beyond the limit, spread over two replicas",
    "tests/hub/test_witness_e2e.py::test_forged_missing_and_replayed_cosigned_checkpoints_are_refused":
        "the hub's checkpoint with a forged or stripped cosignature, an older one replayed",
    "tests/hub/test_witness_e2e.py::test_a_witness_shown_a_split_view_keeps_evidence_and_stops":
        "split view: the log key's twin of a checkpoint a witness cosigned",
    "tests/hub/test_witness_e2e.py::test_crosscheck_finds_a_member_fooled_from_first_sight":
        "split view from first sight (hub and two colluding cosigners), found by crosscheck",
}  # fmt: skip

SUITES = ["tests/attacks", "tests/faults", "tests/load", "tests/core/test_mutations.py"]
#: Modules whose tests build on each other (module fixtures): run whole, then the
#: EXISTING ids in them are read from the results.
WHOLE_MODULES = ["tests/hub/test_aggregation_e2e.py", "tests/hub/test_witness_e2e.py"]


def run_pytest(results: Path, junit: Path, extra: list[str]) -> int:
    env = dict(os.environ)
    env["HYPOTHESIS_PROFILE"] = "soak"
    env["SAMVERKA_SOAK_RESULTS"] = str(results)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "tests" / "load"), env.get("PYTHONPATH", "")]
    ).strip(os.pathsep)
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "soakplugin", "-o", "timeout=3600",
        f"--junitxml={junit}", *SUITES, *WHOLE_MODULES,
        *(test for test in EXISTING if test.split("::")[0] not in WHOLE_MODULES), *extra,
    ]  # fmt: skip
    print("$ HYPOTHESIS_PROFILE=soak " + " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


def junit_outcomes(junit: Path) -> dict[str, str]:
    """test node id (file::name[param]) → passed / failed / skipped."""
    outcomes: dict[str, str] = {}
    if not junit.exists():
        return outcomes
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        name = f"{path}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    # A parametrized test also stands under its bare name: passed when every case passed.
    for name, outcome in list(outcomes.items()):
        if "[" in name:
            bare = name.split("[", 1)[0]
            if bare not in outcomes or outcome != "passed":
                outcomes[bare] = outcome  # the first case, or one that did not pass
    return outcomes


def table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarize(records: list[dict[str, Any]], outcomes: dict[str, str]) -> tuple[str, bool]:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_kind[r["kind"]].append(r)
    ok = True

    attacks = by_kind["attack"]
    refused = sum(1 for a in attacks if a["refused"])
    existing = {k: outcomes.get(k, "not run") for k in EXISTING}
    existing_passed = sum(1 for v in existing.values() if v == "passed")
    ok &= refused == len(attacks) and existing_passed == len(existing)

    # Cases Hypothesis ran to the end (passed); "gave_up" ones were filtered out first.
    counts = {r["name"]: r.get("passed", 0) for r in by_kind["fuzz-count"]}
    core = sum(n for name, n in counts.items() if "test_mutations" in name)
    network = sum(n for name, n in counts.items() if "test_network_fuzz" in name)
    other = sum(n for name, n in counts.items()
                if "test_mutations" not in name and "test_network_fuzz" not in name)  # fmt: skip
    net = by_kind["fuzz"]
    accepted = sum(r.get("accepted", 0) for r in net)
    crashes = sum(r.get("crashes", 0) for r in net)
    failed_fuzz = [n for n, o in outcomes.items()
                   if o == "failed" and ("test_mutations" in n or "fuzz" in n)]  # fmt: skip
    ok &= accepted == 0 and crashes == 0 and not failed_fuzz and core >= 20_000

    faults = by_kind["fault"]
    survived = sum(1 for f in faults if f["survived"])
    lost = sum(f.get("lost", 0) for f in faults) + sum(r.get("lost", 0) for r in by_kind["load"])
    ok &= survived == len(faults) and lost == 0

    load = by_kind["load"]
    peak = max((r["peak_rss_mib"] for r in load), default=0.0)
    growth = max((r["growth_mib"] for r in load), default=0.0)
    load_text = "; ".join(
        f"{r['name'].rsplit('(', 1)[-1].rstrip(')')}: {r['nodes']} nodes / "
        f"{r['subscribers']} subscribers, {r['entries']} entries ({r['deliveries']:,} "
        f"deliveries) in {r['seconds']} s, {r['errors']} errors, {r.get('retries', 0)} retried"
        for r in load
    )
    ok &= bool(load) and all(r["errors"] == 0 for r in load)
    floods = by_kind["flood"]
    flood_ok = bool(floods) and all(r["errors"] == 0 and r["worst_ms"] < 1000 for r in floods)
    ok &= flood_ok
    flood_text = "; ".join(
        f"{r['connections']} connections, {r['flood_calls']:,} worst-case calls "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r['flood_codes'].items()))}); member: "
        f"{r['calls']} calls, worst {r['worst_ms']} ms, {r['errors']} errors; hub RSS "
        f"{r['rss_start_mib']} -> {r['rss_peak_mib']} MiB"
        for r in floods
    )

    rows = [
        ("measure", "result", "detail"),
        ("attacks tried / refused", f"{len(attacks) + len(existing)} / "
         f"{refused + existing_passed}",
         f"{len(attacks)} recorded by tests/attacks and tests/faults (hostile searches: "
         f"answered literally), {len(existing)} existing network attack tests passed"),
        ("fuzz cases (in memory)", f"{core:,}",
         "mutated signed entries against verify_entry (tests/core/test_mutations.py)"),
        ("fuzz cases (over gRPC)", f"{network:,}",
         "mutated Publish requests to a real hub (tests/attacks/test_network_fuzz.py)"),
        ("other Hypothesis cases", f"{other:,}", "any text as a search on the public port"),
        ("accepted mutants / crashes", f"{accepted} / {crashes}",
         "must be 0 / 0; answers to the request types at numeric edges: "
         + ", ".join(f"{k} {v:,}" for r in net for k, v in sorted(r.get("codes", {}).items()))),
        ("faults survived", f"{survived} / {len(faults)}", fault_families(faults)),
        ("entries lost", str(lost), "must be 0"),
        ("load", "ok" if load and all(r["errors"] == 0 for r in load) else "FAILED", load_text),
        ("peak hub memory", f"{peak:.0f} MiB", f"RSS growth after the load {growth:+.0f} MiB"),
        ("flood (tests/attacks/test_flood.py)", "ok" if flood_ok else "FAILED", flood_text),
    ]  # fmt: skip
    details = ["", "attacks:"]
    details += [f"  {'refused' if a['refused'] else 'NOT REFUSED'}  {a['name']}"
                f"  ({a['code']} {a['reason']})" for a in attacks]  # fmt: skip
    details += [f"  {v:7}  {desc}  [{k.split('::')[1]}]" for k, v in
                ((k, existing[k]) for k in EXISTING) for desc in [EXISTING[k]]]  # fmt: skip
    details += ["faults:"] + [
        f"  {'survived' if f['survived'] else 'FAILED'}  {f['name']}"
        + (f"  ({f['entries']} entries, lost {f.get('lost', 0)}" if "entries" in f else "")
        + (f", duplicated {f['duplicated']}" if "duplicated" in f else "")
        + (f", fan-out resumed in {f['resume_seconds']} s" if "resume_seconds" in f else "")
        + (")" if "entries" in f else "")
        for f in faults
    ]
    return table(rows) + "\n" + "\n".join(details), ok


def fault_families(faults: list[dict[str, Any]]) -> str:
    """'kill -9 of the hub during ingest ×2, clock skew ×6, …' from the fault names."""
    families: dict[str, int] = defaultdict(int)
    for fault in faults:
        name = fault["name"]
        family = "clock skew" if name.startswith("clock ") else name.split(" (")[0]
        families[family] += 1
    return ", ".join(f"{family} ×{n}" if n > 1 else family for family, n in families.items())


def main() -> int:
    extra = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    with tempfile.TemporaryDirectory(prefix="samverka-soak-") as tmp:
        results, junit = Path(tmp) / "results.jsonl", Path(tmp) / "junit.xml"
        started = time.monotonic()
        code = run_pytest(results, junit, extra)
        elapsed = time.monotonic() - started
        lines = results.read_text().splitlines() if results.exists() else []
        records = [json.loads(line) for line in lines if line.strip()]
        text, ok = summarize(records, junit_outcomes(junit))
    print(f"\nSamverka soak ({elapsed / 60:.1f} min, pytest exit {code})\n")
    print(text)
    verdict = "PASS" if code == 0 and ok else "FAIL"
    print(f"\nsoak: {verdict} (results: {RESULTS_FILE.name})")
    RESULTS_FILE.write_text(
        json.dumps(
            {"verdict": verdict, "minutes": round(elapsed / 60, 1), "pytest_exit": code,
             "table": text, "records": records},
            ensure_ascii=False, indent=1,
        )
    )  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
