"""What the hub adds to the node's ``samverka`` command (entry points in pyproject.toml).

``samverka hub …`` and the hub folder's doctor profile. The node reads these through
:mod:`samverka.cli.plugins` without importing the hub until a hub command runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from samverka.cli.plugins import CommandSpec
from samverka.ops.doctor import Profile
from samverka.protocol.kommuner import HUB_ORIGIN

HUB_COMMAND = CommandSpec("samverka_hub.cli:hub", "Run and operate the council's hub.")


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
    )
