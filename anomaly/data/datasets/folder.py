"""Your own videos: a folder of normal training videos, a folder of test videos, optional ground truth.

Each entry of the two folders is one video, named by its file stem or folder name; other files (notes,
the ground-truth file itself) and hidden ones are skipped::

    train_dir/
      monday.mp4                 a video file (.avi .mp4 .mov .mkv .mpg .m4v .webm) ...
      camera2/0001.jpg ...       ... or a folder of frames (.jpg .png .tif .bmp), in natural order
    test_dir/
      tuesday.mp4
      camera3/0001.png ...

The ground truth, when given, is a CSV file of abnormal frame ranges, 1-based and inclusive, any number
of rows per test video; a test video without rows is all normal::

    video,start,end
    tuesday,120,180
    tuesday,400,410
    camera3,1,25

Without ground truth the test videos carry no labels (``labels=None``): they can be scored, not evaluated.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from anomaly.data.frames import VIDEO_SUFFIXES, image_files
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError, MissingDataError

HEADER = ["video", "start", "end"]


def load_folder(
    train_dir: str | Path,
    test_dir: str | Path,
    ground_truth: str | Path | None = None,
    name: str = "folder",
) -> VideoDataset:
    """The videos of ``train_dir`` (normal) and ``test_dir``, labelled from ``ground_truth`` if given.

    Example:
        >>> data = load_folder("mine/train", "mine/test", "mine/abnormal.csv")  # doctest: +SKIP
        >>> [(v.name, int(v.labels.sum())) for v in data.test]  # doctest: +SKIP
        [('camera3', 25), ('tuesday', 72)]
    """
    train_dir, test_dir = Path(train_dir), Path(test_dir)
    train = videos_in(train_dir, "training")
    test = videos_in(test_dir, "test")
    if ground_truth is not None:
        test = labelled(test, Path(ground_truth))
    root = Path(os.path.commonpath([train_dir.absolute(), test_dir.absolute()]))
    return VideoDataset(name, root, train, test)


def videos_in(folder: Path, split: str) -> list[Video]:
    """One video per video file or frame folder in ``folder``, by name."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise MissingDataError(f"{folder}: the {split} folder {what}; expected video files and/or frame folders in it")
    videos: dict[str, Video] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if not image_files(entry):
                raise DataError(f"{entry}: no image files (.jpg, .png, .tif, .bmp) in this frame folder")
        elif entry.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        name = entry.stem if entry.is_file() else entry.name
        if name in videos:
            raise DataError(f"{entry} and {videos[name].source}: two videos named {name!r}; rename one")
        videos[name] = Video(name, entry)
    if not videos:
        raise MissingDataError(
            f"{folder}: no {split} videos; expected video files ({', '.join(sorted(VIDEO_SUFFIXES))}) "
            f"and/or folders of frames in it"
        )
    for video in videos.values():
        if len(video) <= 0:
            raise DataError(f"{video.source}: no frames in this video")
    return list(videos.values())


def labelled(videos: list[Video], path: Path) -> list[Video]:
    """``videos`` with 0/1 frame labels from a ``video,start,end`` CSV file of abnormal ranges."""
    if not path.is_file():
        raise DataError(f"{path}: no such ground-truth file; set dataset.ground_truth=PATH (or null for none)")
    by_name = {video.name: video for video in videos}
    labels = {video.name: np.zeros(len(video), dtype=np.int64) for video in videos}
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        rows = [
            (reader.line_num, [cell.strip() for cell in row])
            for row in reader
            if any(cell.strip() for cell in row) and not row[0].strip().startswith("#")
        ]
    if not rows or [cell.lower() for cell in rows[0][1]] != HEADER:
        found = ",".join(rows[0][1]) if rows else "nothing"
        raise DataError(f"{path}: expected the header line 'video,start,end' first, found {found!r}")
    for number, row in rows[1:]:
        if len(row) != 3 or not row[1].isdigit() or not row[2].isdigit() or not 1 <= int(row[1]) <= int(row[2]):
            raise DataError(
                f"{path}, line {number}: cannot read {','.join(row)!r}; expected 'video,start,end' with "
                f"1-based inclusive frame numbers, 1 <= start <= end"
            )
        video, start, end = row[0], int(row[1]), int(row[2])
        if video not in by_name:
            raise DataError(f"{path}, line {number}: no test video {video!r}; the test videos are {sorted(by_name)}")
        if end > len(labels[video]):
            raise DataError(
                f"{path}, line {number}: range {start}-{end} goes past the {len(labels[video])} frames "
                f"of {by_name[video].source}"
            )
        labels[video][start - 1 : end] = 1
    return [Video(video.name, video.source, labels[video.name]) for video in videos]
