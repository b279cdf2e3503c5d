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
from anomaly.data.frames import image_files
from anomaly.data.video import Video
from anomaly.errors import DataError

CACHE_VERSION = 1  # bump when preprocessing changes


def cache_key(video: Video, size: int) -> str:
    source = video.source.resolve()
    if source.is_dir():
        files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in image_files(source)]
    else:
        stat = source.stat()
        files = [(source.name, stat.st_size, stat.st_mtime_ns)]
    identity = [CACHE_VERSION, str(source), files, size, video.start, video.stop]
    return hashlib.sha1(json.dumps(identity).encode()).hexdigest()[:16]


def _read_entry(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError):  # EOFError: an empty file
        return None


def _build_entry(video: Video, size: int, path: Path) -> np.ndarray:
    frames = np.stack(list(video.frames(size))) if len(video) else np.zeros((0, size, size), np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, frames)
        handle.flush()
        os.fsync(handle.fileno())
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
        raise DataError(f"cannot create the frame cache folder {cache_dir} ({err}); set paths.cache_dir") from err
    paths = [cache_dir / f"{v.name}-{cache_key(v, size)}.npy" for v in videos]
    entries = [_read_entry(p) if p.exists() else None for p in paths]
    todo = [i for i, entry in enumerate(entries) if entry is None]
    for i in tqdm(todo, desc=f"caching frames in {cache_dir}", disable=not todo):
        entries[i] = _build_entry(videos[i], size, paths[i])
    return entries
