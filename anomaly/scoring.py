"""The paper's test protocol as pure arithmetic (REFERENCE.md section 4; no I/O, no Lightning).

- Prediction error of a window (Eq. 2): :math:`e = \\sum_{k=1}^{\\tau} \\lVert \\hat y_k - y_k \\rVert_2`,
  the L2 norm over all pixels of each output frame, on the [0, 1] scale.
- Per test video: :math:`e \\leftarrow (e - \\min e) / (\\max e - \\min e)` and regularity :math:`s = 1 - e`
  (the authors' code divides by max - min, not by max as Eq. 3 reads; the code made the published numbers).
- A window's score belongs to its last frame; the first ``window_length - 1`` frames of a video have none.
- Frame-level metrics pool all scored frames of all videos (micro): anomaly score ``1 - s``, positives are
  abnormal frames. AUC, and EER at the ROC point minimising ``|FPR - (1 - TPR)|``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_eer, binary_roc

Rect = tuple[int, int, int, int]  # (row0, row1, col0, col1), 0-based, inclusive


def error_mask(size: int, rects: list[Rect] | tuple[Rect, ...] = ()) -> Tensor | None:
    """A (size, size) 0/1 mask that zeroes ``rects`` of the error map (e.g. Subway's time stamp)."""
    if not rects:
        return None
    mask = torch.ones(size, size)
    for row0, row1, col0, col1 in rects:
        mask[row0 : row1 + 1, col0 : col1 + 1] = 0
    return mask


def prediction_error(output: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Eq. 2 for a batch: (B, tau, 1, H, W) twice -> (B,), sum over frames of per-frame L2 norms."""
    squared = (output - target).square()
    if mask is not None:
        squared = squared * mask
    return squared.flatten(2).sum(dim=2).sqrt().sum(dim=1)


def regularity(errors: Tensor) -> Tensor:
    """Regularity of one video's windows: ``1 - (e - min e) / (max e - min e)``; 1 where e is constant."""
    errors = errors.double()
    span = errors.max() - errors.min()
    if span == 0:
        return torch.ones_like(errors)
    return 1 - (errors - errors.min()) / span


def frame_metrics(scores: list[Tensor], labels: list[Tensor]) -> dict[str, float]:
    """Pooled (micro) frame-level AUC and EER of per-video regularity scores in [0, 1] and 0/1 labels.

    Scores must already be normalised: torchmetrics applies a sigmoid to inputs outside [0, 1].
    """
    anomaly = 1 - torch.cat(scores).double()
    target = torch.cat(labels).long()
    if anomaly.numel() and (anomaly.min() < 0 or anomaly.max() > 1):
        raise ValueError("scores must lie in [0, 1]; normalise each video's errors first (regularity())")
    if target.unique().numel() < 2:
        raise ValueError("frame-level AUC/EER need both normal and abnormal frames among the scored frames")
    return {
        "auc": float(binary_auroc(anomaly, target)),
        "eer": float(binary_eer(anomaly, target)),
        "frames": int(target.numel()),
    }


def roc_curve(scores: list[Tensor], labels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(FPR, TPR) of the pooled frame-level ROC, for plots."""
    fpr, tpr, _ = binary_roc(1 - torch.cat(scores).double(), torch.cat(labels).long())
    return fpr, tpr
