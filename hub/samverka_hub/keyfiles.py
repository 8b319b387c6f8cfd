"""The hub's keys read from its folder as they are now, so a running ``hub serve``
follows ``hub rotate-keys`` (:mod:`samverka_hub.keyrotation`) without a restart: the
council signs the next directory version with the new directory key, the sequencer
the next checkpoint with the new log key. Each file is re-read when it is replaced
(``hub rotate-keys`` replaces files atomically: a new inode) or rewritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from samverka.errors import ConfigError
from samverka.node import load_signing_key
from samverka.protocol.note import Ed25519Signer
from samverka.protocol.signing import SigningKey

from samverka_hub.tlog import LOG_KEY_FILE, LOG_VKEY_FILE, load_log_key

T = TypeVar("T")

_MISSING = (0, 0, 0)


class Reloading(Generic[T]):
    """A value loaded from a file, loaded again when the file changes; ``default`` (if
    given) while the file is missing, else ConfigError."""

    def __init__(self, path: Path, load: Callable[[Path], T], default: T | None = None) -> None:
        self.path = path
        self._load = load
        self._default = default
        self._stamp: tuple[int, int, int] | None = None
        self._value: T | None = None

    def __call__(self) -> T:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = _MISSING
        if stamp != self._stamp or self._value is None:
            if stamp == _MISSING:
                if self._default is None:
                    raise ConfigError(f"{self.path} is missing")
                self._value = self._default
            else:
                self._value = self._load(self.path)
            self._stamp = stamp
        return self._value


def directory_key_source(path: Path) -> Reloading[SigningKey]:
    """The hub's directory key (``keys/signing.key``)."""
    return Reloading(path, load_signing_key)


def log_vkey_source(hub_dir: Path) -> Reloading[str]:
    """The log's verifier key (``keys/log.vkey``; "" before the folder has one)."""
    return Reloading(
        hub_dir / LOG_VKEY_FILE, lambda p: p.read_text(encoding="ascii").strip(), default=""
    )


def log_signer_source(hub_dir: Path) -> Reloading[Ed25519Signer]:
    """The log's note signing key (``keys/log.key``)."""

    def load(_path: Path) -> Ed25519Signer:
        signer = load_log_key(hub_dir)
        if signer is None:
            raise ConfigError(f"{hub_dir / LOG_KEY_FILE} is missing")
        return signer

    return Reloading(hub_dir / LOG_KEY_FILE, load)
