"""UCSD Ped1 / Ped2 (Mahadevan et al., CVPR 2010), in both on-disk layouts in circulation.

The original archive (``UCSD_Anomaly_Dataset.v1p2``); the root may be ``UCSDped2/`` itself or a folder
holding it::

    UCSDped2/
      Train/Train001/001.tif ...         (macOS ``._*`` files are skipped)
      Test/Test001/001.tif ...
      Test/Test001_gt/001.bmp ...        pixel masks: not used (frame-level protocol)
      Test/UCSDped2.m                    frame-level ground truth

The frames layout used by many later works::

    ped2/
      training/frames/01/000.jpg ...
      testing/frames/01/000.jpg ...
      UCSDped2.m  or  ped2.mat

Test videos are paired with ground-truth entries by their number (``Test003`` / ``03`` -> 3rd entry); the
file must describe exactly the test videos present (as many entries as videos, numbered from 1).
"""

from __future__ import annotations

import re
from pathlib import Path

from anomaly.data.groundtruth import ranges_by_number, ranges_to_labels, read_ucsd_ground_truth
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError, MissingDataError

UCSD_FPS = 10.0  # the UCSD cameras recorded 10 frames per second

LAYOUTS = """\
  the original archive (also found in {root}/UCSD{name}/ or {root}/UCSD_Anomaly_Dataset.v1p2/UCSD{name}/):
    {root}/Train/Train001/001.tif ...
    {root}/Test/Test001/001.tif ...
    {root}/Test/UCSD{name}.m
  or the frames layout:
    {root}/training/frames/01/000.jpg ...
    {root}/testing/frames/01/000.jpg ...
    {root}/UCSD{name}.m  (or {root}/{name}.mat)"""


def _video_number(folder: Path) -> int:
    match = re.search(r"(\d+)$", folder.name)
    if not match:
        raise DataError(f"{folder}: cannot tell the video number from the folder name")
    return int(match[1])


def _frame_folders(parent: Path, pattern: str) -> list[Path]:
    folders = [p for p in parent.iterdir() if p.is_dir() and re.fullmatch(pattern, p.name)]
    return sorted(folders, key=_video_number)


def _ground_truth_file(candidates: list[Path], folder: Path) -> Path:
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise DataError(f"{folder}: no ground-truth file; expected one of {[p.name for p in candidates]}")
    return found[0]


def _labelled(videos: list[Path], ground_truth: Path) -> list[Video]:
    ranges = ranges_by_number([_video_number(f) for f in videos], read_ucsd_ground_truth(ground_truth), ground_truth)
    labelled = []
    for folder in videos:
        video = Video(folder.name, folder)
        labels = ranges_to_labels(ranges[_video_number(folder)], len(video), f"test video {folder.name}")
        labelled.append(Video(folder.name, folder, labels))
    return labelled


def load_ucsd(root: str | Path, name: str) -> VideoDataset:
    """Find and read a UCSD-style dataset (``name``: ``ped1``, ``ped2``, ``synthetic``...) under ``root``."""
    root = Path(root)
    for base in (root, root / f"UCSD{name}", root / "UCSD_Anomaly_Dataset.v1p2" / f"UCSD{name}"):
        if (base / "Train").is_dir() and (base / "Test").is_dir():
            test_dir = base / "Test"
            gt = _ground_truth_file(
                [test_dir / f"UCSD{name}.m", *sorted(test_dir.glob("*.m")), base / f"{name}.mat"],
                test_dir,
            )
            train = [Video(p.name, p) for p in _frame_folders(base / "Train", r"Train\d+")]
            test = _labelled(_frame_folders(test_dir, r"Test\d+"), gt)
            return _checked(VideoDataset(name, base, train, test, UCSD_FPS))
    if (root / "training" / "frames").is_dir() and (root / "testing" / "frames").is_dir():
        gt = _ground_truth_file([root / f"UCSD{name}.m", *sorted(root.glob("*.m")), root / f"{name}.mat"], root)
        train = [Video(p.name, p) for p in _frame_folders(root / "training" / "frames", r"\d+")]
        test = _labelled(_frame_folders(root / "testing" / "frames", r"\d+"), gt)
        return _checked(VideoDataset(name, root, train, test, UCSD_FPS))
    where = "does not exist" if not root.exists() else "holds neither UCSD layout"
    raise MissingDataError(
        f"dataset {name!r}: {root} {where}. Expected one of:\n{LAYOUTS.format(root=root, name=name)}\n"
        + (f"Fetch it with `python -m anomaly.data.download {name}`, or s" if name in ("ped1", "ped2") else "S")
        + "et the root with dataset.root=PATH or the ANOMALY_DATA environment variable "
        f"(root = $ANOMALY_DATA/{name})."
    )


def _checked(dataset: VideoDataset) -> VideoDataset:
    for split, videos in (("training", dataset.train), ("test", dataset.test)):
        if not videos:
            raise DataError(
                f"{dataset.root}: no {split} videos found. Expected:\n"
                + LAYOUTS.format(root=dataset.root, name=dataset.name)
            )
        for video in videos:
            if video.source_frames == 0:
                raise DataError(f"{video.source}: no image files (.tif, .jpg, .png, .bmp) in this video folder")
    return dataset
