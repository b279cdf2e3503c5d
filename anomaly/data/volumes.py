"""Volumes cut from cached videos (``uint8`` arrays of shape (T, H, W)), as torch Datasets.

Training volumes take ``length`` frames every ``stride`` frames, for each stride in ``strides`` (the
paper's augmentation: strides 1, 2, 3 simulate faster motion). Test windows slide with stride 1 and carry
the index of the frame their score belongs to (the last one). Volumes stay ``uint8`` (a quarter of the
bytes to copy and to move to an accelerator); the model turns them into [0, 1] floats on its device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from anomaly.errors import ConfigError


def _volume(frames: np.ndarray, start: int, length: int, stride: int) -> Tensor:
    clip = np.array(frames[start : start + (length - 1) * stride + 1 : stride])  # a copy, not a read-only view
    return torch.from_numpy(clip).unsqueeze(1)  # (length, 1, H, W) uint8


def check_strides(strides: Sequence[int]) -> tuple[int, ...]:
    """``strides`` as a tuple, or a :class:`ConfigError` that names ``datamodule.strides``."""
    if not strides or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in strides):
        raise ConfigError(
            f"datamodule.strides={list(strides)}: need one or more positive temporal strides, whole numbers "
            "(the paper: [1,2,3])"
        )
    return tuple(strides)


class TrainingVolumes(Dataset):
    def __init__(self, videos: Sequence[np.ndarray], length: int, strides: Sequence[int] = (1, 2, 3)) -> None:
        check_strides(strides)
        self.videos, self.length = videos, length
        self.index = [
            (v, start, stride)
            for stride in strides
            for v, frames in enumerate(videos)
            for start in range(len(frames) - (length - 1) * stride)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Tensor:
        v, start, stride = self.index[i]
        return _volume(self.videos[v], start, self.length, stride)


class TestWindows(Dataset):
    """Every stride-1 window of every video.

    Items are (volume, video index, scored frame index, label of that frame); the label is -1 where the
    video has no ground truth.
    """

    def __init__(
        self, videos: Sequence[np.ndarray], length: int, labels: Sequence[np.ndarray | None] | None = None
    ) -> None:
        self.videos, self.length = videos, length
        self.labels = list(labels) if labels is not None else [None] * len(videos)
        self.index = [(v, start) for v, frames in enumerate(videos) for start in range(len(frames) - length + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int, int]:
        v, start = self.index[i]
        scored = start + self.length - 1
        labels = self.labels[v]
        label = -1 if labels is None else int(labels[scored])
        return _volume(self.videos[v], start, self.length, 1), v, scored, label
