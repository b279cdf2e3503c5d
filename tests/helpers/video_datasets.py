"""Tiny datasets in the real on-disk formats of Avenue, Subway and users' own folders, for the real loaders.

Videos are MJPG ``.avi`` files written with OpenCV (as Avenue's), frames JPEG/PNG files; each frame shows
a gradient shifted by its video and frame numbers, so tests can tell frames apart. Ground truth is
written in each dataset's own format: MATLAB ``volLabel`` cells of masks, ``avenue.mat`` vectors, ranges
files and ``video,start,end`` CSV files.

Example:
    >>> root = make_avenue_original(tmp_path, test_frames=(30,), abnormal=[[(11, 20)]])  # doctest: +SKIP
    >>> load_avenue(root).test[0].labels[9:12]  # doctest: +SKIP
    array([0, 1, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.io
from omegaconf import DictConfig
from PIL import Image

from helpers.config import compose_config

Ranges = Sequence[tuple[int, int]]
SIZE = (64, 48)  # width, height: Avenue's 640x360 aspect, shrunk


def dataset_config(*overrides: str) -> DictConfig:
    """The ``dataset`` node of the real training config, composed with ``overrides``."""
    return compose_config("train", *overrides).dataset


def frame_pattern(video: int, frame: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A grey ``uint8`` (H, W) frame: a diagonal gradient shifted by the video and frame numbers."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    return ((rows * 5 + cols * 3 + video * 40 + frame * 9) % 256).astype(np.uint8)


def write_video(path: Path, frames: int, video: int = 1, size: tuple[int, int] = SIZE, fps: float = 25) -> Path:
    """A colour video of ``frames`` frames: MJPG for ``.avi``, MPEG-4 part 2 for ``.mp4``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "mp4v" if path.suffix == ".mp4" else "MJPG"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in range(frames):
        writer.write(cv2.cvtColor(frame_pattern(video, frame, size), cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def write_frames(folder: Path, frames: int, video: int = 1, size: tuple[int, int] = SIZE, suffix: str = ".jpg") -> Path:
    """A frame folder ``0000.jpg``, ``0001.jpg``... (Avenue's frames layout numbering)."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(frames):
        Image.fromarray(frame_pattern(video, frame, size)).convert("RGB").save(folder / f"{frame:04d}{suffix}")
    return folder


def labels_of(ranges: Ranges, frames: int) -> np.ndarray:
    """The 0/1 labels that 1-based inclusive ``ranges`` stand for."""
    labels = np.zeros(frames, dtype=np.int64)
    for start, end in ranges:
        labels[start - 1 : end] = 1
    return labels


def second_half(frames: int) -> list[tuple[int, int]]:
    return [(frames // 2 + 1, frames)]


def write_vol_label(path: Path, labels: np.ndarray, shape: tuple[int, int]) -> Path:
    """Avenue's ``N_label.mat``: variable ``volLabel``, a 1xN cell of (H, W) ``uint8`` masks.

    An abnormal frame's mask has a small blob set; a normal frame's is all zero.
    """
    cells = np.empty((1, len(labels)), dtype=object)
    for index, abnormal in enumerate(labels):
        mask = np.zeros(shape, dtype=np.uint8)
        if abnormal:
            mask[shape[0] // 3 : shape[0] // 2, shape[1] // 4 : shape[1] // 3] = 1
        cells[0, index] = mask
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"volLabel": cells})
    return path


def make_avenue_original(
    root: Path,
    train_frames: Sequence[int] = (20, 24),
    test_frames: Sequence[int] = (30, 26),
    abnormal: Sequence[Ranges] | None = None,
    size: tuple[int, int] = SIZE,
) -> Path:
    """The two original archives unpacked side by side at ``root``; returns root.

    ``Avenue Dataset/{training,testing}_videos/NN.avi`` and ``ground_truth_demo/testing_label_mask/
    N_label.mat``; by default the second half of each test video is abnormal.
    """
    abnormal = [second_half(n) for n in test_frames] if abnormal is None else abnormal
    for number, frames in enumerate(train_frames, start=1):
        write_video(root / "Avenue Dataset" / "training_videos" / f"{number:02d}.avi", frames, number, size)
    masks = root / "ground_truth_demo" / "testing_label_mask"
    for number, (frames, ranges) in enumerate(zip(test_frames, abnormal, strict=True), start=1):
        write_video(root / "Avenue Dataset" / "testing_videos" / f"{number:02d}.avi", frames, 20 + number, size)
        write_vol_label(masks / f"{number}_label.mat", labels_of(ranges, frames), (size[1], size[0]))
    return root


def make_avenue_frames(
    root: Path,
    train_frames: Sequence[int] = (12, 10),
    test_frames: Sequence[int] = (14, 12),
    abnormal: Sequence[Ranges] | None = None,
    gt_format: str = "vectors",
) -> Path:
    """The frames layout at ``root`` (``training/frames/01/0000.jpg``...) with ``avenue.mat``; returns root.

    ``gt_format='vectors'``: variables ``'01'``, ``'02'``... of 1xN 0/1 vectors; ``'gt'``: variable ``gt``,
    a 1xN cell of 2xK [start; end] ranges.
    """
    abnormal = [second_half(n) for n in test_frames] if abnormal is None else abnormal
    for number, frames in enumerate(train_frames, start=1):
        write_frames(root / "training" / "frames" / f"{number:02d}", frames, number)
    for number, frames in enumerate(test_frames, start=1):
        write_frames(root / "testing" / "frames" / f"{number:02d}", frames, 20 + number)
    if gt_format == "vectors":
        variables = {
            f"{number:02d}": labels_of(ranges, frames)[None, :].astype(np.uint8)
            for number, (frames, ranges) in enumerate(zip(test_frames, abnormal, strict=True), start=1)
        }
    else:
        cells = np.empty((1, len(abnormal)), dtype=object)
        for index, ranges in enumerate(abnormal):
            cells[0, index] = np.array(ranges, dtype=np.float64).reshape(-1, 2).T
        variables = {"gt": cells}
    scipy.io.savemat(root / "avenue.mat", variables)
    return root


def make_subway(
    root: Path,
    frames: int = 150,
    fps: float = 10,
    ranges: Ranges = ((70, 79), (121, 130)),
    video: str = "subway_entrance_turnstiles.avi",
    ground_truth_lines: Sequence[str] | None = None,
) -> Path:
    """A Subway-like long recording at ``root/video`` (a file, or a frame folder when ``video`` has no
    suffix) and ``root/ground_truth.txt`` in the ranges format, mixing separators and comments; returns root.
    """
    path = root / video
    if path.suffix:
        write_video(path, frames, 1, fps=fps)
    else:
        write_frames(path, frames, 1)
    separators = [",", "-", " ", ", "]
    lines = ["# abnormal frames, 1-based and inclusive", ""] + [
        f"{start}{separators[i % len(separators)]}{end}  # event {i + 1}" for i, (start, end) in enumerate(ranges)
    ]
    lines = lines if ground_truth_lines is None else list(ground_truth_lines)
    (root / "ground_truth.txt").write_text("\n".join(lines) + "\n")
    return root


def make_folder_dataset(root: Path, ground_truth: Sequence[str] | None = None) -> Path:
    """Users' own videos at ``root``: ``train/`` and ``test/``, each with an ``.avi`` file and a frame folder.

    ``train/day.avi`` (24 frames), ``train/cam2/`` (16 PNG frames), ``test/evening.avi`` (30 frames),
    ``test/cam3/`` (18 JPEG frames), plus a stray ``notes.txt``; ``ground_truth`` lines are written to
    ``root/abnormal.csv``. Returns root.
    """
    write_video(root / "train" / "day.avi", 24, 1)
    write_frames(root / "train" / "cam2", 16, 2, suffix=".png")
    write_video(root / "test" / "evening.avi", 30, 3)
    write_frames(root / "test" / "cam3", 18, 4)
    (root / "test" / "notes.txt").write_text("not a video\n")
    if ground_truth is not None:
        (root / "abnormal.csv").write_text("\n".join(ground_truth) + "\n")
    return root


def truncate(path: Path, fraction: float) -> Path:
    """Cut a file to ``fraction`` of its bytes, as an interrupted copy or download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
