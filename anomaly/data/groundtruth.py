"""Frame-level ground truth: every file format in circulation, read strictly, then turned into 0/1 labels.

Every format ends as abnormal frame ranges (1-based, inclusive) and goes through one function,
:func:`ranges_to_labels`. A line or value that cannot be read is an error naming the file and line, never
skipped: a skipped line would pair every later video with another video's ranges.

UCSD ``UCSDped1.m`` / ``UCSDped2.m`` (one line per test video, in order; ``%`` starts a comment)::

    TestVideoFile = {};
    TestVideoFile{end+1}.gt_frame = [61:180];
    TestVideoFile{end+1}.gt_frame = [5:90, 140:200];

``ped1.mat`` / ``ped2.mat``: variable ``gt``, a 1xN cell, each a 2xK array of [start; end] columns.

A ranges file (Subway), one range per line, ``#`` comments, an optional ``start,end`` header::

    27900,28000
    29750-29850

A CSV of ``video,start,end`` rows, any number per video (your own videos, ``dataset=folder``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.data.matfile import load_mat
from anomaly.errors import DataError


class Range(tuple):
    """A 1-based inclusive ``(start, end)`` frame range that remembers where it was read (file and line).

    It equals the plain tuple ``(start, end)``; ``where`` only makes later errors name the line.
    """

    where: str

    def __new__(cls, start: int, end: int, where: str = "") -> Range:
        self = super().__new__(cls, (start, end))
        self.where = where
        return self


Ranges = list[tuple[int, int]]

_M_INIT = re.compile(r"^TestVideoFile\s*=\s*\{\s*\}\s*;?$")
_M_LINE = re.compile(r"^TestVideoFile\s*\{\s*end\s*\+\s*1\s*\}\s*\.\s*gt_frame\s*=\s*\[(?P<body>[^\]]*)\]\s*;?$")
_M_RANGE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+))?\s*$")
_TEXT_RANGE = re.compile(r"^(\d+)\s*(?:[,;\-]|\s)\s*(\d+)$")
CSV_HEADER = ["video", "start", "end"]


def read_ucsd_m(path: Path) -> list[Ranges]:
    """Ranges per test video from a UCSD ``.m`` ground-truth file."""
    videos: list[Ranges] = []
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.split("%", 1)[0].strip()
        if not line or _M_INIT.match(line):
            continue
        match = _M_LINE.match(line)
        if not match:
            raise DataError(
                f"{path}, line {number}: cannot read {raw.strip()!r}; expected 'TestVideoFile{{end+1}}.gt_frame = "
                f"[a:b];' (one line per test video, '%' for comments)"
            )
        ranges: Ranges = []
        for part in re.split(r"[,;]", match["body"]):
            if not part.strip():
                continue
            parsed = _M_RANGE.match(part)
            if not parsed:
                raise DataError(f"{path}, line {number}: cannot read range {part.strip()!r}; expected 'a:b'")
            ranges.append(_checked_range(int(parsed[1]), int(parsed[2] or parsed[1]), f"{path}, line {number}"))
        videos.append(ranges)
    if not videos:
        raise DataError(f"{path}: no 'TestVideoFile{{end+1}}.gt_frame = [a:b];' lines found")
    return videos


def read_ucsd_mat(path: Path) -> list[Ranges]:
    """Ranges per test video from a ``ped1.mat`` / ``ped2.mat`` file (cell ``gt`` of 2xK arrays)."""
    return ucsd_mat_ranges(load_mat(path), path)


def ucsd_mat_ranges(content: dict[str, Any], path: Path) -> list[Ranges]:
    """The ranges in the variables of a ``ped2.mat``-style file; every value must be a whole frame number."""
    if "gt" not in content:
        raise DataError(f"{path}: no variable 'gt'; found {[k for k in content if not k.startswith('__')]}")
    gt = np.asarray(content["gt"])
    cells = gt.ravel() if gt.dtype == object else [gt]
    videos = []
    for index, cell in enumerate(cells, start=1):
        array = np.asarray(cell)
        if array.ndim != 2 or array.shape[0] != 2 or array.dtype.kind not in "iuf":
            raise DataError(
                f"{path}: 'gt' cell {index} must be a 2xK numeric array of [start; end] columns, got "
                f"{array.shape} {array.dtype}"
            )
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            raise DataError(f"{path}: 'gt' cell {index} holds {array.ravel().tolist()}: frame numbers must be whole")
        where = f"{path}, 'gt' cell {index}"
        videos.append([_checked_range(int(a), int(b), where) for a, b in array.T])
    return videos


def read_ucsd_ground_truth(path: Path) -> list[Ranges]:
    return read_ucsd_m(path) if path.suffix == ".m" else read_ucsd_mat(path)


def read_ranges_file(path: Path) -> Ranges:
    """Abnormal ranges from a text file of one ``start,end`` (or ``start-end``, ``start end``) per line."""
    ranges: Ranges = []
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or re.fullmatch(r"start\s*[,;\s]\s*end", line, re.IGNORECASE):
            continue
        match = _TEXT_RANGE.match(line)
        if not match:
            raise DataError(
                f"{path}, line {number}: cannot read {raw.strip()!r}; expected a 1-based inclusive range "
                f"'start,end' (or 'start-end', 'start end') with 1 <= start <= end"
            )
        ranges.append(_checked_range(int(match[1]), int(match[2]), f"{path}, line {number}"))
    return ranges


def read_ranges_csv(path: Path, videos: Sequence[str]) -> dict[str, Ranges]:
    """Abnormal ranges per video from a ``video,start,end`` CSV; every video named must be in ``videos``."""
    text = _read_text(path)
    rows = [
        (number, [cell.strip() for cell in row])
        for number, row in enumerate(csv.reader(text.splitlines()), start=1)
        if any(cell.strip() for cell in row) and not row[0].strip().startswith("#")
    ]
    if not rows or [cell.lower() for cell in rows[0][1]] != CSV_HEADER:
        found = ",".join(rows[0][1]) if rows else "nothing"
        raise DataError(f"{path}: expected the header line 'video,start,end' first, found {found!r}")
    ranges: dict[str, Ranges] = {name: [] for name in videos}
    for number, row in rows[1:]:
        if len(row) != 3 or not row[1].isdigit() or not row[2].isdigit():
            raise DataError(
                f"{path}, line {number}: cannot read {','.join(row)!r}; expected 'video,start,end' with "
                f"1-based inclusive frame numbers, 1 <= start <= end"
            )
        if row[0] not in ranges:
            raise DataError(f"{path}, line {number}: no test video {row[0]!r}; the test videos are {sorted(ranges)}")
        ranges[row[0]].append(_checked_range(int(row[1]), int(row[2]), f"{path}, line {number}"))
    return ranges


def ranges_to_labels(ranges: Ranges, frames: int, video: str) -> np.ndarray:
    """0/1 labels of ``frames`` frames from 1-based inclusive ranges; ``video`` names the video in errors.

    The error names the file and line a range was read at, when it knows them (:class:`Range`).
    """
    labels = np.zeros(frames, dtype=np.int64)
    for item in ranges:
        start, end = item
        if not 1 <= start <= end <= frames:
            where = getattr(item, "where", "") or "ground truth"
            raise DataError(
                f"{where}: abnormal range {start}-{end} does not fit {video}, which has {frames} frames "
                f"(ranges are 1-based and inclusive)"
            )
        labels[start - 1 : end] = 1
    return labels


def ranges_by_number(numbers: Sequence[int], ranges: list[Ranges], path: Path) -> dict[int, Ranges]:
    """Pair test videos numbered 1..N with the N entries of a ground-truth file listed in video order.

    Every test video needs its entry and every entry its video: a count that differs is an error, since
    it means the file does not describe this set of videos.
    """
    have = sorted(numbers)
    if have != list(range(1, len(ranges) + 1)):
        missing = sorted(set(range(1, len(ranges) + 1)) - set(have))
        extra = sorted(set(have) - set(range(1, len(ranges) + 1)))
        raise DataError(
            f"{path} lists ground truth for {len(ranges)} test videos, but the test videos are numbered "
            f"{_spans(have)}"
            + (f"; no video for entries {_spans(missing)}" if missing else "")
            + (f"; no entry for videos {_spans(extra)}" if extra else "")
            + ": give the ground-truth file of exactly these videos"
        )
    return {number: ranges[number - 1] for number in numbers}


def _checked_range(start: int, end: int, where: str) -> Range:
    if not 1 <= start <= end:
        raise DataError(f"{where}: range {start}-{end}: expected 1-based inclusive frame numbers, 1 <= start <= end")
    return Range(start, end, where)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: no such ground-truth file; set dataset.ground_truth=PATH (or null for none)")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text file (byte {err.start} is not UTF-8); is it the ground truth?") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None


def _spans(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts) or "none"
