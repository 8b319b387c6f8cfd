"""The protobuf contract's compatibility check (`make buf-lint`: buf breaking against
proto/contract-v1.binpb, the last released contract).

The check runs buf itself (through npx, as the Makefile does, from npm's cache after
the first run) on a copy of proto/: the contract as it is passes, and a copy with one
field renumbered or renamed fails, naming the field.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
MAKEFILE = ROOT / "Makefile"


def _buf_command() -> list[str]:
    """`$(BUF)` as the Makefile spells it, so the test runs the same buf version."""
    match = re.search(r"^BUF\s*:=\s*(.+)$", MAKEFILE.read_text(), re.MULTILINE)
    assert match, "the Makefile defines BUF"
    return match[1].split()


def _breaking(proto_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_buf_command(), "breaking", "--against", "contract-v1.binpb"],
        cwd=proto_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def proto_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy)
    return copy


def _edit(proto_dir: Path, old: str, new: str) -> None:
    path = proto_dir / "samverka" / "v1" / "records.proto"
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_the_contract_is_compatible_with_the_released_one(proto_copy: Path) -> None:
    result = _breaking(proto_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_renumbered_field_breaks_the_contract(proto_copy: Path) -> None:
    _edit(
        proto_copy,
        "  string summary = 2;\n  string description = 3;",
        ("  string summary = 2;\n  string description = 99;"),
    )
    result = _breaking(proto_copy)
    assert result.returncode != 0
    assert '"3" with name "description" on message "UseCase"' in result.stdout, result.stdout


def test_a_renamed_field_breaks_the_contract(proto_copy: Path) -> None:
    _edit(proto_copy, "  bool tombstone = 8;", "  bool retracted = 8;")
    result = _breaking(proto_copy)
    assert result.returncode != 0
    assert "tombstone" in result.stdout, result.stdout
