"""Frames: reading images and videos, and the paper's preprocessing (REFERENCE.md section 3).

Every frame becomes a grey ``uint8`` array of ``size x size`` (227 for the network), resized with PIL's
bilinear filter (which antialiases when shrinking). Division by 255 happens when volumes are cut, so the
on-disk cache stays ``uint8``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from anomaly.errors import DataError

IMAGE_SUFFIXES = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".bmp"}
FRAME_FOLDER_FPS = 25.0  # a folder of frames carries no frame rate: this one is assumed unless one is given
VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm"}


def natural_key(path: Path) -> list[int | str]:
    """Sort key that puts ``2.jpg`` before ``10.jpg``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    """The image files of a frame folder in natural order, skipping macOS ``._*`` files."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("._")]
    return sorted(files, key=natural_key)


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """Grey, ``size x size`` with PIL's bilinear filter, ``uint8``."""
    grey = image.convert("L")
    if grey.size != (size, size):
        grey = grey.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8)


def read_image(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return preprocess(image, size)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot read this image ({err}); replace or remove the file") from err


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header announces."""

    frames: int
    height: int
    width: int
    fps: float


@contextmanager
def open_video(path: Path) -> Iterator[cv2.VideoCapture]:
    """An OpenCV capture of ``path``, released afterwards; a :class:`DataError` naming it if it cannot open."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(f"{path}: OpenCV cannot open this video; is it a readable video file?")
        yield capture
    finally:
        capture.release()


def video_info(path: Path) -> VideoInfo:
    with open_video(path) as capture:
        return VideoInfo(
            frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        )


def read_video(path: Path, size: int, start: int = 0) -> Iterator[np.ndarray]:
    """Decode a video file with OpenCV, frame by frame, preprocessed, from frame ``start`` (0-based) on.

    ``start`` seeks rather than decoding the frames before it, so that the segments of one long video
    (Subway) each cost their own length, not the length of the video up to their end.
    """
    with open_video(path) as capture:
        position = cv2.CAP_PROP_POS_FRAMES
        if start and not (capture.set(position, start) and capture.get(position) == start):
            capture.open(str(path))  # no exact seek in this file: start over, skipping frames unprocessed
            for _ in range(start):
                if not capture.grab():
                    return
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if frame.ndim == 3 else frame
            yield preprocess(Image.fromarray(rgb), size)
