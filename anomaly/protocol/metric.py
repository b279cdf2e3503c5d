"""The test's bookkeeping as a torchmetrics ``Metric``: one row per test window, gathered across processes.

Each window adds (video index, scored frame, Eq. 2 error, PSNR, label of the scored frame). Under DDP the
rows of every process are concatenated (``dist_reduce_fx="cat"``); distributed samplers pad the last
batches with repeated windows, so :meth:`TestErrors.compute` keeps one row per (video, frame).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from anomaly.protocol.scoring import VideoErrors

COLUMNS = 5  # video, scored frame, prediction error, PSNR, label


class TestErrors(Metric):
    """Per-window prediction errors of a test pass; ``compute()`` gives one row per window (gathered across
    processes, repeats dropped), which :func:`videos_of` splits into videos in frame order.

    (``compute`` returns the rows as one 2-D tensor: torchmetrics squeezes any one-element tensor it finds in
    what ``compute`` returns, which would turn a video with a single scored frame into 0-d tensors.)
    """

    __test__ = False  # not a pytest test class, despite the name
    full_state_update = False
    rows: list[Tensor] | Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, video: Tensor, frame: Tensor, errors: Tensor, psnr: Tensor, labels: Tensor) -> None:
        columns = (video, frame, errors.detach(), psnr.detach(), labels)
        self.rows.append(torch.stack([c.to(errors.device, torch.float64) for c in columns], 1))

    def compute(self) -> Tensor:
        rows = dim_zero_cat(self.rows).cpu() if len(self.rows) else torch.zeros(0, COLUMNS, dtype=torch.float64)
        if len(rows):
            _, inverse = torch.unique(rows[:, :2], dim=0, return_inverse=True)
            rows = rows[_first_indices(inverse)]
        return rows


def videos_of(rows: Tensor) -> list[VideoErrors]:
    """The rows of :meth:`TestErrors.compute`, per video, in frame order."""
    videos = []
    for v in rows[:, 0].unique().long().tolist():
        own = rows[rows[:, 0] == v]
        own = own[own[:, 1].argsort()]
        videos.append(VideoErrors(v, own[:, 1].long(), own[:, 2], own[:, 3], own[:, 4].long()))
    return videos


def _first_indices(inverse: Tensor) -> Tensor:
    """Index of the first occurrence of each unique value, given ``torch.unique(..., return_inverse)``."""
    order = torch.arange(len(inverse))
    first = torch.full((int(inverse.max()) + 1,), len(inverse), dtype=torch.long)
    return first.scatter_reduce(0, inverse, order, reduce="amin")
