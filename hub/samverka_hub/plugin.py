"""What the hub adds to the node's ``samverka`` command (entry points in pyproject.toml).

``samverka hub …`` and the hub folder's doctor profile. The node reads these through
:mod:`samverka.cli.plugins` without importing the hub until a hub command runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samverka.cli.plugins import CommandSpec
from samverka.i18n import N_, Text
from samverka.ops.doctor import Finding, Profile, Status
from samverka.protocol.kommuner import HUB_ORIGIN

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

HUB_COMMAND = CommandSpec("samverka_hub.cli:hub", N_("Kör och sköt rådets hubb."))


def doctor_profile(folder: Path, raw: Mapping[str, Any]) -> Profile | None:
    """The hub's profile for a hub folder (kommun 0000); None for any other folder."""
    node_table = raw.get("node")
    if not isinstance(node_table, dict) or node_table.get("kommun") != HUB_ORIGIN:
        return None
    from samverka_hub.config import HUB_SECTIONS, load_hub_config
    from samverka_hub.migrations import HUB_TRACK

    def load_extra(path: Path) -> Sequence[Path]:
        return [load_hub_config(path).ca_key_path]

    return Profile(
        kind="hub",
        extra_sections=HUB_SECTIONS,
        tracks=("store", HUB_TRACK),
        load_extra=load_extra,
        database_checks=(signing_seat,),
    )


def signing_seat(engine: Engine) -> list[Finding]:
    """FAIL on a copy of the hub's database (restored or cloned) that may not sign: it
    serves, but signs no directory version and no log checkpoint until promoted."""
    from samverka_hub.members import MemberStore

    with MemberStore(engine).read() as tx:
        seat = tx.signing_seat()
        allowed, here = tx.signing_allowed()
    if allowed:
        return [
            Finding(
                "database",
                Status.OK,
                Text(
                    N_("den här databasen ({here}) är den som katalogen och loggen signeras på"),
                    here=here,
                ),
            )
        ]
    return [
        Finding(
            "database",
            Status.FAIL,
            Text(
                N_(
                    "den här databasen ({here}) är en kopia (återställd eller klonad) av den som "
                    "signerade katalogen ({seat}): den signerar ingen ny katalogversion och "
                    "ingen kontrollpunkt i transparensloggen, så medlemmarna får ingen "
                    "återkallelse eller antagning från den"
                ),
                here=here,
                seat=seat.database if seat else "?",
            ),
            Text(
                N_(
                    "om den här kopian nu ÄR produktionshubben (den gamla stoppad för gott): "
                    "samverka hub promote --dir HUB (docs/OPERATIONS.md, 'Backing up a hub'); "
                    "i en återställningsövning är detta väntat"
                )
            ),
        )
    ]
