"""Crash-safe writes: a kill leaves either the previous file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it is renamed onto ``path`` when the block succeeds.

    The temporary name keeps the suffix (for writers that choose a format by it, such as ``savefig``).

    Example:
        >>> with atomic_path("results.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``OSError`` now where writing ``path`` with :func:`atomic_path` would fail later (its folder cannot
    be made or written, or ``path`` is a folder), so that a long job is refused before it starts."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    existing = next(folder for folder in path.absolute().parents if folder.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = _temporary_sibling(path)
    probe.touch()
    probe.unlink()


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def write_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, newline="")
