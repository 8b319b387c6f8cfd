"""The harvester's schedule, in-process: who is harvested, and back-off for a member
that cannot be reached (its node is down), without stopping the others.

The schedule's decisions and its table: tests/hub/test_harvest_schedule.py; several
hub processes sharing it: tests/hub/test_replicas_harvest.py."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import hubkit
from aggkit import free_port
from samverka.store.logwatch import LogWatcher
from samverka.transport.client import ClientTls
from samverka.v1 import directory_pb2
from samverka_hub.config import HarvestSection
from samverka_hub.harvest import Harvester, targets


def admit(hub: hubkit.HubUnderTest, code: str, address: str = "") -> None:
    applicant = hubkit.Applicant.make(code)
    hub.council.submit_enrollment(applicant.request(address=address))
    hub.council.approve(code)


def test_only_active_members_with_an_address_are_harvested(tmp_path: Path) -> None:
    with hubkit.make_hub(tmp_path / "hub") as hub:
        admit(hub, "2029", "127.0.0.1:7601")
        admit(hub, "1472")  # behind a firewall: it pushes
        admit(hub, "2026", "127.0.0.1:7602")
        hub.council.revoke("2026", reason="test")
        directory = hub.council.current_directory()
        assert directory is not None
        assert [(t.kommunkod, t.address) for t in targets(directory)] == [
            ("2029", "127.0.0.1:7601")
        ]
        assert directory.member("2026").status == directory_pb2.MEMBER_STATUS_REVOKED  # type: ignore[union-attr]


def test_an_unreachable_member_is_retried_with_back_off(tmp_path: Path) -> None:
    with hubkit.make_hub(tmp_path / "hub") as hub:
        admit(hub, "2029", f"127.0.0.1:{free_port()}")  # nobody listens there
        directory = hub.council.current_directory()
        assert directory is not None
        settings = HarvestSection(interval_seconds=0.1, max_backoff_seconds=0.4, concurrency=2)

        async def run() -> Harvester:
            harvester = Harvester(
                hub.hub.store,
                lambda: directory,
                ClientTls.from_config(hub.hub.config.node),
                LogWatcher(hub.hub.store),
                settings,
                max_clock_skew_ms=600_000,
            )
            await harvester.start()
            try:
                async with asyncio.timeout(60):
                    while harvester.status.failures < 2:
                        await asyncio.sleep(0.05)
                # the back-off, kept in the database, never exceeds max_backoff_seconds
                (row,) = harvester.schedule.rows()
                assert row["kommunkod"] == "2029" and row["failures"] >= 2
                assert "2029" in harvester.status.last and row["last_error"]
                waiting = row["next_due_ms"] - time.time_ns() // 1_000_000
                assert row["claimed_by"] == harvester.replica or waiting <= 400
            finally:
                await harvester.close()
            return harvester

        harvester = hubkit.run_async(run())
        outcome = harvester.status.last["2029"]
        assert not outcome.ok and not outcome.refused and outcome.report is None
        assert harvester.status.harvests == harvester.status.failures


def test_a_stopping_harvester_hands_its_claim_back(tmp_path: Path) -> None:
    """A member whose node accepts connections but never answers holds a harvest in
    flight; the harvester stopping (SIGTERM in `hub serve`) releases the claim, due
    now, instead of leaving it to another replica only when the lease runs out."""
    with hubkit.make_hub(tmp_path / "hub") as hub, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel accepts; nobody speaks TLS
        admit(hub, "2029", f"127.0.0.1:{silent.getsockname()[1]}")
        directory = hub.council.current_directory()
        assert directory is not None
        settings = HarvestSection(interval_seconds=60, lease_seconds=60)

        async def run() -> Harvester:
            harvester = Harvester(
                hub.hub.store,
                lambda: directory,
                ClientTls.from_config(hub.hub.config.node),
                LogWatcher(hub.hub.store),
                settings,
                max_clock_skew_ms=600_000,
            )
            await harvester.start()
            try:
                async with asyncio.timeout(30):
                    while not [r for r in harvester.schedule.rows() if r["claimed_by"]]:
                        await asyncio.sleep(0.05)
                (row,) = harvester.schedule.rows()
                assert row["claimed_by"] == harvester.replica
                assert row["next_due_ms"] > time.time_ns() // 1_000_000 + 50_000  # the lease
            finally:
                await harvester.close()
            return harvester

        harvester = hubkit.run_async(run())
        (row,) = harvester.schedule.rows()
        assert row["claimed_by"] == "" and row["next_due_ms"] <= time.time_ns() // 1_000_000
        assert harvester.status.harvests == 0  # it never finished
