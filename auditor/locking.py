"""Exclusive locks on output directories: one writer at a time (run directories, sweeps)."""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from auditor.errors import UserError

_held = threading.local()


@contextmanager
def exclusive(lock_file: Path, *, busy: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created if missing) while the block runs.

    Never waits: when another process, or another thread of this one, holds the
    lock, raises ``UserError(busy)`` at once. Re-entrant within one thread, so
    ``auditor run`` holds its run's lock across the stages, each of which takes it
    again. The lock file is never deleted (deleting it would let a second writer
    lock a new file while the first still holds the old one); the kernel releases
    the lock when its holder exits, however it exits.
    """
    key = str(lock_file.resolve())
    mine: set[str] = getattr(_held, "paths", None) or set()
    _held.paths = mine
    if key in mine:
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(busy) from None
        mine.add(key)
        try:
            yield
        finally:
            mine.discard(key)
    finally:
        os.close(fd)
