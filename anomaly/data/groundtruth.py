"""Frame-level ground truth: the file formats in circulation, turned into per-frame 0/1 labels.

UCSD ``UCSDped1.m`` / ``UCSDped2.m`` (1-based, inclusive ranges, one line per test video in order)::

    TestVideoFile{end+1}.gt_frame = [61:180];
    TestVideoFile{end+1}.gt_frame = [5:90, 140:200];

``ped1.mat`` / ``ped2.mat``: variable ``gt``, a 1xN cell, each a 2xK array of [start; end] columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from anomaly.errors import DataError

Ranges = list[tuple[int, int]]

_M_LINE = re.compile(r"gt_frame\s*=\s*\[(?P<body>[^\]]*)\]")
_M_RANGE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+))?\s*$")


def read_ucsd_m(path: Path) -> list[Ranges]:
    """Ranges per test video from a UCSD ``.m`` ground-truth file."""
    videos: list[Ranges] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        match = _M_LINE.search(line)
        if not match:
            if "gt_frame" in line:  # skipping it would pair every later video with the wrong ranges
                raise DataError(f"{path}, line {number}: cannot read {line.strip()!r}; expected 'gt_frame = [a:b];'")
            continue
        ranges: Ranges = []
        for part in re.split(r"[,;]", match["body"]):
            if not part.strip():
                continue
            parsed = _M_RANGE.match(part)
            if not parsed:
                raise DataError(f"{path}, line {number}: cannot read range {part.strip()!r}; expected 'a:b'")
            start = int(parsed[1])
            ranges.append((start, int(parsed[2] or start)))
        videos.append(ranges)
    if not videos:
        raise DataError(f"{path}: no 'TestVideoFile{{end+1}}.gt_frame = [a:b];' lines found")
    return videos


def read_ucsd_mat(path: Path) -> list[Ranges]:
    """Ranges per test video from a ``ped1.mat`` / ``ped2.mat`` file (cell ``gt`` of 2xK arrays)."""
    try:
        content = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several unrelated types for a bad file
        raise DataError(f"{path}: cannot read this MATLAB file ({err})") from err
    if "gt" not in content:
        raise DataError(f"{path}: no variable 'gt'; found {[k for k in content if not k.startswith('__')]}")
    videos = []
    for cell in np.asarray(content["gt"], dtype=object).ravel():
        array = np.asarray(cell, dtype=np.int64)
        if array.ndim != 2 or array.shape[0] != 2:
            raise DataError(f"{path}: each 'gt' cell must be a 2xK array of [start; end], got {array.shape}")
        videos.append([(int(a), int(b)) for a, b in array.T])
    return videos


def read_ucsd_ground_truth(path: Path) -> list[Ranges]:
    return read_ucsd_m(path) if path.suffix == ".m" else read_ucsd_mat(path)


def ranges_to_labels(ranges: Ranges, frames: int, where: str) -> np.ndarray:
    """0/1 labels of ``frames`` frames from 1-based inclusive ranges; ``where`` names the video in errors."""
    labels = np.zeros(frames, dtype=np.int64)
    for start, end in ranges:
        if not 1 <= start <= end <= frames:
            raise DataError(
                f"{where}: abnormal range {start}-{end} does not fit a video of {frames} frames "
                f"(ranges are 1-based and inclusive)"
            )
        labels[start - 1 : end] = 1
    return labels
