"""Atomic file writes, used by every writer of the toolkit.

A file is written to a fresh temporary name in its own directory (created with
its final permissions, ``O_EXCL``), flushed and fsynced, renamed over the target,
and the directory is fsynced so the rename itself survives a crash. A reader
sees the old file or the new one, never a half-written one, and a secret file
is never readable by others, not even for a moment.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def temp_name(path: Path) -> Path:
    """The temporary name a write of ``path`` goes through: ``.NAME.<random>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_file(path: str | os.PathLike, *, mode: int = 0o644, binary: bool = False,
                newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path`` (fsynced).

    Args:
        path: the file to write; its parent directories are created.
        mode: the file's permissions (``0o600`` for secrets), set from creation on.
        binary: write bytes instead of UTF-8 text.
        newline: passed to ``open`` for text (``""`` for the ``csv`` module).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        text = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, "wb" if binary else "w", **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed the mode given to os.open
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically with permissions ``mode``."""
    with atomic_file(path, mode=mode, binary=isinstance(data, bytes)) as fh:
        fh.write(data)
    return Path(path)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make the directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private(path: str | os.PathLike, data: Any) -> Path:
    """Write a secret file (JSON for non-str data) with mode 0600 from the start.

    Atomic and fsynced: the file is created on a temporary
    name with mode 0600 and renamed into place, so no reader ever sees it with
    wider permissions or half written.
    """
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=True)
    return atomic_write(path, text, mode=0o600)
