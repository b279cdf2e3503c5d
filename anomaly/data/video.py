"""A video of a dataset: where its frames are, and (for test videos) which frames are abnormal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np

from anomaly.data.frames import image_files, read_image, read_video, video_info
from anomaly.errors import DataError


@dataclass(frozen=True)
class Video:
    """One video: a folder of frames or a video file, optionally a slice of it, with frame labels.

    Attributes:
        name: short name used in results and plots (``Test001``, ``01``).
        source: a folder of image files, or a video file.
        labels: per-frame 0/1 ground truth (1 = abnormal) for test videos; None when unknown.
        start, stop: the slice ``[start, stop)`` of the source's frames this video stands for
            (``stop=None``: to the end), for datasets cut out of one long recording.
    """

    name: str
    source: Path
    labels: np.ndarray | None = None
    start: int = 0
    stop: int | None = None

    def frames(self, size: int) -> Iterator[np.ndarray]:
        """Preprocessed frames (``uint8``, ``size x size``) in order, exactly ``len(self)`` of them.

        Raises:
            DataError: naming the file, when a frame cannot be read, or when a video file decodes to
                fewer frames than its header announces (a truncated or damaged file: labels would no
                longer line up with the frames).
        """
        if self.source.is_dir():
            return (read_image(path, size) for path in self.files[self.start : self.stop])
        return self._all_decoded(read_video(self.source, size, self.start), len(self))

    @cached_property
    def files(self) -> list[Path]:
        """The image files of a frame folder, in order (listed once); empty for a video file."""
        return image_files(self.source) if self.source.is_dir() else []

    @cached_property
    def source_frames(self) -> int:
        """Frames in the whole source (a folder's image files, or what a video file announces), read once."""
        if self.source.is_dir():
            return len(self.files)
        if not self.source.exists():
            raise DataError(f"{self.source}: no such file or folder")
        return video_info(self.source).frames

    def __len__(self) -> int:
        total = self.source_frames
        stop = total if self.stop is None else min(self.stop, total)
        return max(stop - self.start, 0)

    def _all_decoded(self, frames: Iterator[np.ndarray], expected: int) -> Iterator[np.ndarray]:
        decoded = 0
        for frame in islice(frames, expected):
            decoded += 1
            yield frame
        if decoded < expected:
            raise DataError(
                f"{self.source}: the file announces {self.source_frames} frames but decoding "
                f"stopped at frame {self.start + decoded}; it is truncated or damaged (copy or download it "
                f"again), or its container only estimates its length (re-encode it, or extract its frames "
                f"to a folder)"
            )


@dataclass(frozen=True)
class VideoDataset:
    """What every dataset loader returns: training videos (normal only) and test videos.

    Test videos carry per-frame labels where ground truth is known (``labels=None`` otherwise). ``fps`` is the
    frame rate of the recordings (for times and false alarms per minute).
    """

    name: str
    root: Path
    train: list[Video]
    test: list[Video]
    fps: float
