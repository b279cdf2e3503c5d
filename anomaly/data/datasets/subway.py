"""Subway Entrance and Exit (Adam et al., PAMI 2008): one long surveillance video each, cut in time.

The videos come from their authors on request (REFERENCE.md section 5); file names are settings
(``conf/dataset/subway_entrance.yaml``), relative ones taken from the root::

    subway_entrance/
      subway_entrance_turnstiles.AVI     the whole recording (512x384, 25 fps), or a folder of frames
      ground_truth.txt                   abnormal frame ranges, numbered in the whole video

The first ``train_minutes`` minutes are the training video (12 for Entrance, 5 for Exit, as in the paper);
the rest is cut into consecutive test videos of ``segment_frames`` frames, since the protocol normalises
the error of each test video on its own (REFERENCE.md section 4). A last piece shorter than half a
segment joins the one before it. All of them are slices of the one source (``Video.start`` / ``stop``).

The ground-truth file lists abnormal frames as 1-based, inclusive ranges, one per line, as ``start,end``,
``start-end`` or ``start end``; ``#`` starts a comment, and blank lines and a ``start,end`` header are
allowed::

    # Entrance: loitering, wrong direction, no payment
    27900,28000
    29750-29850

Ranges inside the training minutes are not used: the protocol trains on those frames as normal.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from anomaly.data.frames import FRAME_FOLDER_FPS, image_files, video_info
from anomaly.data.groundtruth import ranges_to_labels, read_ranges_file
from anomaly.data.video import Video, VideoDataset
from anomaly.errors import DataError, MissingDataError


def load_subway(
    root: str | Path,
    video: str | Path,
    ground_truth: str | Path | None,
    train_minutes: float,
    segment_frames: int,
    fps: float | None = None,
    name: str = "subway",
) -> VideoDataset:
    """One long video: its first ``train_minutes`` for training, the rest as test segments.

    Args:
        root: the dataset folder; relative ``video`` and ``ground_truth`` paths are taken from it.
        video: a video file (``.avi``, ``.mp4``...) or a folder of frames, the whole recording.
        ground_truth: the abnormal frame ranges (see the module docstring); None leaves the test
            videos unlabelled.
        train_minutes: length of the training part, in minutes.
        segment_frames: frames per test video; the last piece, if shorter than half of this, joins the
            one before it.
        fps: frames per second; None reads it from a video file (25 for a folder of frames).
        name: the dataset's name.

    Example:
        >>> data = load_subway("data/subway_exit", "subway_exit_turnstiles.AVI", "ground_truth.txt",
        ...                    train_minutes=5, segment_frames=15000)  # doctest: +SKIP
        >>> data.train[0].name, [v.name for v in data.test][:2]  # doctest: +SKIP
        ('000001-007500', ['007501-022500', '022501-037500'])
    """
    root = Path(root)
    source = root / video
    if not source.exists():
        where = f"{root} does not exist" if not root.exists() else f"no such file or folder in {root}"
        raise MissingDataError(
            f"dataset {name!r}: {source}: {where}. Expected the whole recording there (a video file or a "
            f"folder of frames); set it with dataset.video=PATH and the root with dataset.root=PATH."
        )
    if train_minutes <= 0 or segment_frames <= 0:
        raise DataError(f"dataset {name!r}: train_minutes and segment_frames must be positive")
    rate = fps or _frame_rate(source)
    total = Video(name, source).source_frames
    first_test = round(train_minutes * 60 * rate)
    if first_test >= total:
        raise DataError(
            f"{source}: {total} frames ({total / rate / 60:.1f} min at {rate:g} fps) leave nothing to test "
            f"after the first {train_minutes:g} training minutes ({first_test} frames)"
        )
    labels = None if ground_truth is None else read_ranges(root / ground_truth, total)
    train = [Video(_span(0, first_test), source, None, 0, first_test)]
    test = [
        Video(_span(start, stop), source, None if labels is None else labels[start:stop].copy(), start, stop)
        for start, stop in segment_spans(first_test, total, segment_frames)
    ]
    return VideoDataset(name, root, train, test, rate)


def segment_spans(first: int, total: int, segment_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frame spans of ``segment_frames`` from ``first`` to ``total``; a short tail joins."""
    spans = [(start, min(start + segment_frames, total)) for start in range(first, total, segment_frames)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < segment_frames / 2:
        spans[-2:] = [(spans[-2][0], total)]
    return spans


def read_ranges(path: Path, frames: int) -> np.ndarray:
    """Per-frame 0/1 labels of a video of ``frames`` frames from a ranges file (module docstring)."""
    return ranges_to_labels(read_ranges_file(path), frames, "the recording")


def _frame_rate(source: Path) -> float:
    if source.is_dir():
        if not image_files(source):
            raise DataError(f"{source}: no image files (.jpg, .png, .tif, .bmp) in this frame folder")
        return FRAME_FOLDER_FPS
    rate = video_info(source).fps
    if not rate or math.isnan(rate) or rate <= 0:
        raise DataError(f"{source}: the video does not tell its frame rate; set it with dataset.fps=25")
    return rate


def _span(start: int, stop: int) -> str:
    """A slice's name: its frames, 1-based and inclusive, in the whole video's numbering."""
    return f"{start + 1:06d}-{stop:06d}"
