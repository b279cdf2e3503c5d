"""CUHK Avenue (Lu, Shi and Jia, ICCV 2013), in both on-disk layouts in circulation.

The original archives ``Avenue_Dataset.zip`` and ``ground_truth_demo.zip`` unpacked side by side (what
``python -m anomaly.data.download avenue`` leaves)::

    avenue/
      Avenue Dataset/
        training_videos/01.avi ... 16.avi        640x360 colour, 25 fps, normal only
        testing_videos/01.avi ... 21.avi
      ground_truth_demo/
        testing_label_mask/1_label.mat ... 21_label.mat
                                   variable volLabel: a 1xN cell of 360x640 masks, one per frame;
                                   a frame is abnormal when any pixel of its mask is set

The frames layout used by many later works::

    avenue/
      training/frames/01/0000.jpg ...
      testing/frames/01/0000.jpg ...
      avenue.mat                   variables '01' ... '21': a 1xN 0/1 vector per test video, one per frame
                                   (or variable gt: a 1x21 cell of 2xK [start; end] ranges, as ped2.mat)

Test videos and ground truth are paired by their number (``07.avi`` <-> ``7_label.mat`` or variable
``'07'``): a test video without ground truth, or ground truth without its video, is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.data.frames import VIDEO_SUFFIXES, video_info
from anomaly.data.groundtruth import ranges_by_number, ranges_to_labels, ucsd_mat_ranges
from anomaly.data.matfile import iter_mats, load_mat
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError, MissingDataError

AVENUE_FPS = 25.0  # Avenue's frame rate, for the frames layout (frames carry none)

LAYOUTS = """\
  the original archives, unpacked side by side:
    {root}/Avenue Dataset/training_videos/01.avi ...
    {root}/Avenue Dataset/testing_videos/01.avi ...
    {root}/ground_truth_demo/testing_label_mask/1_label.mat ...
  or the frames layout:
    {root}/training/frames/01/0000.jpg ...
    {root}/testing/frames/01/0000.jpg ...
    {root}/avenue.mat"""


def load_avenue(root: str | Path, name: str = "avenue") -> VideoDataset:
    """Find and read CUHK Avenue under ``root``, in either layout.

    Example:
        >>> dataset = load_avenue("data/avenue")  # doctest: +SKIP
        >>> len(dataset.train), len(dataset.test)  # doctest: +SKIP
        (16, 21)
    """
    root = Path(root)
    if (root / "Avenue Dataset").is_dir():
        return _checked(_original(root, name))
    if (root / "training" / "frames").is_dir() and (root / "testing" / "frames").is_dir():
        return _checked(_frames(root, name))
    where = "does not exist" if not root.exists() else "holds neither Avenue layout"
    raise MissingDataError(
        f"dataset {name!r}: {root} {where}. Expected one of:\n{LAYOUTS.format(root=root)}\n"
        f"Fetch it with `python -m anomaly.data.download avenue`, or set the root with dataset.root=PATH "
        f"or the ANOMALY_DATA environment variable (root = $ANOMALY_DATA/{name})."
    )


def _original(root: Path, name: str) -> VideoDataset:
    videos = root / "Avenue Dataset"
    masks = root / "ground_truth_demo" / "testing_label_mask"
    for folder in (videos / "training_videos", videos / "testing_videos", masks):
        if not folder.is_dir():
            raise MissingDataError(f"{folder}: missing. Expected:\n{LAYOUTS.format(root=root)}")
    train = [Video(p.stem, p) for p in _numbered(videos / "training_videos", _is_video)]
    label_files = {_number(p): p for p in _numbered(masks, lambda p: p.name.endswith("_label.mat"))}
    test_files = _numbered(videos / "testing_videos", _is_video)
    for path in test_files:
        if _number(path) not in label_files:
            number = _number(path)
            raise DataError(f"{path}: test video {number} has no ground truth; expected {masks}/{number}_label.mat")
    extra = sorted(set(label_files) - {_number(p) for p in test_files})
    if extra:
        number = extra[0]
        raise DataError(
            f"{label_files[number]}: ground truth for test video {number}, but {videos / 'testing_videos'} holds no "
            f"video {number:02d}.avi; put the video back or remove this file"
        )
    contents = iter_mats([label_files[_number(p)] for p in test_files])  # read one at a time (large masks)
    test = []
    for path, content in zip(test_files, contents, strict=True):
        video = Video(path.stem, path)
        test.append(Video(path.stem, path, _mask_labels(label_files[_number(path)], content, video)))
    return VideoDataset(name, root, train, test, video_info(test_files[0]).fps or AVENUE_FPS)


def _frames(root: Path, name: str) -> VideoDataset:
    gt = root / f"{name}.mat"
    if not gt.is_file():
        raise DataError(f"{root}: no ground-truth file {gt.name}. Expected:\n{LAYOUTS.format(root=root)}")
    train = [Video(p.name, p) for p in _numbered(root / "training" / "frames", Path.is_dir)]
    test = [Video(p.name, p) for p in _numbered(root / "testing" / "frames", Path.is_dir)]
    content = load_mat(gt)
    if "gt" in content:  # ranges per test video in order, as ped2.mat
        ranges = ranges_by_number([_number(v.source) for v in test], ucsd_mat_ranges(content, gt), gt)
        labelled = [
            Video(v.name, v.source, ranges_to_labels(ranges[_number(v.source)], len(v), f"test video {v.name}"))
            for v in test
        ]
        return VideoDataset(name, root, train, labelled, AVENUE_FPS)
    vectors = {int(key): key for key in content if key.isdigit()}
    if not vectors:
        found = [key for key in content if not key.startswith("__")]
        raise DataError(f"{gt}: no per-video variables '01' ... '21' and no 'gt'; found {found}")
    labelled = []
    for video in test:
        key = vectors.pop(_number(video.source), None)
        if key is None:
            raise DataError(f"{video.source}: this test video has no ground truth; {gt} has no variable for it")
        labelled.append(Video(video.name, video.source, _vector_labels(gt, key, content, video)))
    if vectors:
        number, key = min(vectors.items())
        raise DataError(
            f"{gt}: variable {key!r} is ground truth for test video {number}, but "
            f"{root / 'testing' / 'frames'} holds no folder {number:02d}"
        )
    return VideoDataset(name, root, train, labelled, AVENUE_FPS)


def _mask_labels(path: Path, content: dict[str, Any] | DataError, video: Video) -> np.ndarray:
    """A frame is abnormal when any pixel of its mask is set."""
    if isinstance(content, DataError):
        raise content
    if "volLabel" not in content:
        raise DataError(f"{path}: no variable 'volLabel'; found {[k for k in content if not k.startswith('__')]}")
    cells = np.asarray(content["volLabel"])
    if cells.dtype != object:
        raise DataError(f"{path}: 'volLabel' is a {cells.shape} array; expected a 1xN cell of masks")
    cells = cells.ravel()
    frames = len(video)
    if len(cells) != frames:
        raise DataError(f"{path}: {len(cells)} masks for the {frames} frames of {video.source}; expected {frames}")
    info = video_info(video.source)
    labels = np.zeros(frames, dtype=np.int64)
    for index, cell in enumerate(cells):
        mask = np.asarray(cell)
        if mask.shape != (info.height, info.width) or mask.dtype.kind not in "biuf":
            raise DataError(
                f"{path}: mask {index + 1} has shape {mask.shape} ({mask.dtype}); expected ({info.height}, "
                f"{info.width}) numbers, the frame size of {video.source}"
            )
        labels[index] = int(mask.any())
    return labels


def _vector_labels(path: Path, key: str, content: dict[str, Any], video: Video) -> np.ndarray:
    vector = np.asarray(content[key])
    frames = len(video)
    if vector.ndim > 2 or (vector.ndim == 2 and min(vector.shape) != 1) or vector.size != frames:
        raise DataError(
            f"{path}: variable {key!r} has shape {vector.shape}; expected a 1x{frames} 0/1 vector, "
            f"one entry per frame of {video.source}"
        )
    if vector.dtype.kind not in "biuf" or not np.isin(vector, (0, 1)).all():
        raise DataError(f"{path}: variable {key!r} holds values other than 0 and 1")
    return vector.ravel().astype(np.int64)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _number(path: Path) -> int:
    return int(re.match(r"\d+", path.name)[0])


def _numbered(folder: Path, keep: Callable[[Path], bool]) -> list[Path]:
    """The entries of ``folder`` whose name starts with a number (``01.avi``, ``7_label.mat``), by number."""
    return sorted((p for p in folder.iterdir() if re.match(r"\d+", p.name) and keep(p)), key=_number)


def _checked(dataset: VideoDataset) -> VideoDataset:
    for split, videos in (("training", dataset.train), ("test", dataset.test)):
        if not videos:
            raise DataError(f"{dataset.root}: no {split} videos found. Expected:\n{LAYOUTS.format(root=dataset.root)}")
        for video in videos:
            if video.source_frames <= 0:
                raise DataError(f"{video.source}: no frames (an empty video, or a folder without image files)")
    return dataset
