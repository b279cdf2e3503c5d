"""On-disk frame cache: each video decoded and preprocessed once into a ``uint8`` (T, H, W) ``.npy`` file.

The file name carries a key made of the source's identity (path, and the names, sizes and modification
times of its files) and the preprocessing settings, so a changed source or frame size makes a new entry and
an unchanged one is reused. A file is written under a temporary name and renamed into place, so a process
killed while caching never leaves a half-written entry under the final name; an entry that cannot be read
is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anomaly.atomic import atomic_path
from anomaly.data.video import Video
from anomaly.errors import DataError

CACHE_VERSION = 1  # bump when preprocessing changes


def cache_key(video: Video, size: int) -> str:
    """The identity of a video's cache entry: its files (names, sizes, modification times) and the settings."""
    files = []
    for path in video.files or [video.source]:
        try:
            stat = path.stat()
        except OSError as err:  # a broken link, a symlink loop, a file removed meanwhile
            raise DataError(f"{path}: cannot read this file ({err.strerror}); replace or remove it") from None
        files.append((path.name, stat.st_size, stat.st_mtime_ns))
    identity = [CACHE_VERSION, str(video.source.resolve()), files, size, video.start, video.stop]
    return hashlib.sha1(json.dumps(identity).encode()).hexdigest()[:16]


def _read_entry(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):  # EOFError: an empty file
        return None


def _build_entry(video: Video, size: int, path: Path) -> np.ndarray:
    frames = np.stack(list(video.frames(size))) if len(video) else np.zeros((0, size, size), np.uint8)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, frames)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:  # not writable, disk full, ...: the half-written temporary file is gone already
        raise DataError(
            f"cannot write the frame cache entry {path} ({err.strerror or err}); free some space there, or set "
            f"the cache folder elsewhere with ANOMALY_CACHE=DIR (or paths.cache_dir=DIR)"
        ) from None
    return frames


def cached_frames(videos: Sequence[Video], size: int, cache_dir: str | Path | None) -> list[np.ndarray]:
    """The preprocessed frames of each video, from the cache where present, decoding (with a bar) where not.

    ``cache_dir=None`` decodes into memory without caching.
    """
    if cache_dir is None:
        return [np.stack(list(v.frames(size))) for v in tqdm(videos, desc="decoding videos", leave=False)]
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the frame cache folder {cache_dir} ({err.strerror or err}); set the cache folder "
            f"elsewhere with ANOMALY_CACHE=DIR (or paths.cache_dir=DIR)"
        ) from None
    paths = [cache_dir / f"{v.name}-{cache_key(v, size)}.npy" for v in videos]
    entries = [_read_entry(p) if p.exists() else None for p in paths]
    todo = [i for i, entry in enumerate(entries) if entry is None]
    for i in tqdm(todo, desc=f"caching frames in {cache_dir}", disable=not todo):
        entries[i] = _build_entry(videos[i], size, paths[i])
    return entries
