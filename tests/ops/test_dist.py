"""``make dist`` builds the wheel deploy/ installs; installed into a fresh virtual
environment it runs ``samverka --help`` and ``doctor`` on new node and hub folders.

Offline and fast: the fresh venv gets no pip of its own (this venv's pip installs into
it with ``--python``) and no dependencies from an index: a ``.pth`` line puts this venv's
site-packages after its own, so the dependencies resolve there while ``samverka`` itself
must come from the wheel (the editable install's finder is a ``.pth`` of that folder,
which a ``.pth`` line does not run). The test checks that it does.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from opskit import REPO, clean_env

BIN = Path(sys.executable).parent


def packaged_files() -> set[str]:
    """Every file git holds under the two packages that the wheel must carry: all of
    them except tests and caches (so data another change adds is checked too)."""
    listed = subprocess.run(
        ["git", "ls-files", "node/samverka", "hub/samverka_hub"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    wanted = set()
    for name in listed:
        inside = name.split("/", 1)[1]
        if not (REPO / name).exists() or "__pycache__" in inside or inside.endswith(".pyc"):
            continue  # deleted in the work tree (someone's move in progress)
        wanted.add(inside)
    return wanted


def test_make_dist_builds_a_wheel_that_installs_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    made = subprocess.run(
        ["make", "-o", ".venv/.installed-stamp", "dist", f"DIST={dist}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    # No container engine answers on the test machine: said, not failed.
    assert "image NOT built" in made.stdout or "samverka:" in made.stdout, made.stdout
    wheels = sorted(dist.glob("samverka-*.whl"))
    assert len(wheels) == 1, wheels

    names = set(zipfile.ZipFile(wheels[0]).namelist())
    missing = sorted(f for f in packaged_files() if f not in names)
    assert not missing, f"the wheel lacks {missing}"
    for needed in (
        "samverka_hub/web/templates/base.html",
        "samverka_hub/web/static/style.css",
        "samverka/data/municipalities.csv",
        "samverka/v1/feed_pb2.pyi",
        "samverka/store/alembic/env.py",
        "samverka_hub/alembic/env.py",
    ):
        assert needed in names, needed

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = site.getsitepackages()[0] if site.getsitepackages() else sysconfig.get_paths()["purelib"]
    (Path(purelib) / "project-dependencies.pth").write_text(ours + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--no-deps", "--no-index", str(wheels[0])],
        check=True, timeout=300,
    )  # fmt: skip

    env = clean_env()
    env.pop("PYTHONPATH", None)

    def samverka(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(venv / "bin" / "samverka"), *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert not check or done.returncode == 0, f"samverka {args}: {done.stdout}{done.stderr}"
        return done

    where = subprocess.run(
        [str(python), "-c", "import samverka, samverka_hub; print(samverka.__file__);"
         "print(samverka_hub.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(purelib) for path in where), where

    # The gettext catalogs are package data: Swedish by default, English on request.
    assert "Användning:" in samverka("--help").stdout
    assert "Usage:" in samverka("--lang", "en", "--help").stdout
    samverka("node", "init", "--kommun", "2029", "--dir", str(tmp_path / "node"))
    doctor = samverka("doctor", "--dir", str(tmp_path / "node"))
    assert "FAIL" not in doctor.stdout, doctor.stdout
    samverka(
        "hub", "init", "--dir", str(tmp_path / "hub"),
        "--listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
    )  # fmt: skip
    doctor = samverka("doctor", "--dir", str(tmp_path / "hub"), "--offline")
    assert "FAIL" not in doctor.stdout, doctor.stdout
    assert os.access(venv / "bin" / "samverka", os.X_OK)
