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

import os
from pathlib import Path

from anomaly.data.frames import FRAME_FOLDER_FPS, VIDEO_SUFFIXES, image_files, video_info
from anomaly.data.groundtruth import ranges_to_labels, read_ranges_csv
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError, MissingDataError


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
    files = [v.source for v in test if v.source.is_file()]
    return VideoDataset(name, root, train, test, (video_info(files[0]).fps if files else 0) or FRAME_FOLDER_FPS)


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
    ranges = read_ranges_csv(path, [video.name for video in videos])
    return [Video(v.name, v.source, ranges_to_labels(ranges[v.name], len(v), f"test video {v.name}")) for v in videos]
