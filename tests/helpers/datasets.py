"""Tiny on-disk datasets in the real formats, for running the real loaders in tests.

Each generator writes a few small frames per video (a pattern that differs by video and frame, so a test
can tell frames apart) and the ground-truth files in the format of that layout. The real data, when this
checkout sits next to ``../shared``, is described by ``SHARED``, ``PED2`` and ``MODELS``.

Example:
    >>> root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(8,), gt=[[(3, 8)]])  # doctest: +SKIP
    >>> load_ucsd(root, "ped2").test[0].labels  # doctest: +SKIP
    array([0, 0, 1, 1, 1, 1, 1, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

Ranges = Sequence[tuple[int, int]]

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PED2 = SHARED / "data" / "ped2"
MODELS = SHARED / "models"


def frame_pattern(video: int, frame: int, size: tuple[int, int]) -> np.ndarray:
    """A grey ``uint8`` (H, W) frame: a gradient shifted by the video and frame numbers."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    return ((rows * 7 + cols * 3 + video * 40 + frame * 11) % 256).astype(np.uint8)


def write_frames(folder: Path, video: int, count: int, size: tuple[int, int], first: int, suffix: str) -> None:
    """``count`` frames named ``{first:03d}{suffix}`` onwards; JPEGs are RGB with equal channels (as Ped2)."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(count):
        image = Image.fromarray(frame_pattern(video, frame, size))
        if suffix == ".jpg":
            image = image.convert("RGB")
        image.save(folder / f"{first + frame:03d}{suffix}")


def default_gt(test_frames: Sequence[int]) -> list[list[tuple[int, int]]]:
    """One range per test video: its second half abnormal."""
    return [[(count // 2 + 1, count)] for count in test_frames]


def write_ucsd_m(path: Path, gt: Sequence[Ranges]) -> Path:
    """A UCSD ``.m`` ground-truth file: one ``gt_frame = [a:b, c:d];`` line per test video."""
    lines = ["TestVideoFile = {};"]
    for ranges in gt:
        body = ", ".join(f"{a}:{b}" for a, b in ranges)
        lines.append(f"TestVideoFile{{end+1}}.gt_frame = [{body}];")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ucsd_mat(path: Path, gt: Sequence[Ranges]) -> Path:
    """A ``ped2.mat``-style file: variable ``gt``, a 1xN cell of 2xK arrays of [start; end] columns."""
    cells = np.empty((1, len(gt)), dtype=object)
    for index, ranges in enumerate(gt):
        cells[0, index] = np.array(ranges, dtype=np.float64).reshape(-1, 2).T
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"gt": cells})
    return path


def crashing_mat(path: Path) -> Path:
    """An uncompressed ped2.mat with one byte changed that kills scipy.io.loadmat with a segmentation fault."""
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.array([[61.0], [180.0]]), np.array([[95.0], [180.0]])
    scipy.io.savemat(path, {"gt": cells}, do_compression=False)
    data = bytearray(path.read_bytes())
    data[224] = 0  # a size field of the second cell
    path.write_bytes(bytes(data))
    return path


def make_ucsd_original(
    root: Path,
    name: str = "ped2",
    train_frames: Sequence[int] = (6, 5),
    test_frames: Sequence[int] = (8, 6),
    size: tuple[int, int] = (12, 8),
    gt: Sequence[Ranges] | None = None,
    with_mac_junk: bool = True,
    with_gt_masks: bool = True,
) -> Path:
    """The original archive's layout (``UCSD_Anomaly_Dataset.v1p2/UCSD<name>``) at ``root``; returns root.

    ``Train/TrainNNN/001.tif``, ``Test/TestNNN/001.tif``, ``Test/UCSD<name>.m``; optionally macOS ``._*``
    junk next to the frames and ``Test/TestNNN_gt/`` pixel-mask folders, which the loader must skip.
    """
    for split, counts in (("Train", train_frames), ("Test", test_frames)):
        for number, count in enumerate(counts, start=1):
            folder = root / split / f"{split}{number:03d}"
            write_frames(folder, number, count, size, first=1, suffix=".tif")
            if with_mac_junk:
                (folder / "._001.tif").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
            if with_gt_masks and split == "Test":
                write_frames(root / split / f"{split}{number:03d}_gt", number, count, size, 1, ".bmp")
    write_ucsd_m(root / "Test" / f"UCSD{name}.m", default_gt(test_frames) if gt is None else gt)
    return root


def make_ucsd_frames(
    root: Path,
    name: str = "ped2",
    train_frames: Sequence[int] = (6, 5),
    test_frames: Sequence[int] = (8, 6),
    size: tuple[int, int] = (12, 8),
    gt: Sequence[Ranges] | None = None,
    gt_format: str = "m",
) -> Path:
    """The frames layout (``training/frames/01/000.jpg``...) at ``root``; returns root.

    Ground truth as ``UCSD<name>.m`` (``gt_format='m'``) or ``<name>.mat`` (``gt_format='mat'``).
    """
    for split, counts in (("training", train_frames), ("testing", test_frames)):
        for number, count in enumerate(counts, start=1):
            write_frames(root / split / "frames" / f"{number:02d}", number, count, size, first=0, suffix=".jpg")
    gt = default_gt(test_frames) if gt is None else gt
    if gt_format == "m":
        write_ucsd_m(root / f"UCSD{name}.m", gt)
    elif gt_format == "mat":
        write_ucsd_mat(root / f"{name}.mat", gt)
    else:
        raise ValueError(f"gt_format={gt_format!r}: use 'm' or 'mat'")
    return root
