"""Pictures of a test: regularity over time (paper Fig. 2), the ROC curve, and an error-map panel (Fig. 3)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from anomaly.atomic import atomic_path  # noqa: E402


def write_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Write ``figure`` as PNG atomically (a kill leaves the previous picture) and free it."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)


def _abnormal_spans(frames: np.ndarray, labels: np.ndarray) -> list[tuple[int, int]]:
    spans, start = [], None
    for frame, label in zip(frames, labels, strict=True):
        if label == 1 and start is None:
            start = frame
        if label != 1 and start is not None:
            spans.append((start, frame - 1))
            start = None
    if start is not None:
        spans.append((start, frames[-1]))
    return spans


def regularity_figure(videos: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Figure:
    """One panel per test video: regularity s(t) over frame number, ground-truth anomalies shaded."""
    cols = min(4, len(videos)) or 1
    rows = math.ceil(len(videos) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False, sharey=True)
    for ax, (name, frames, scores, labels) in zip(axes.flat, videos, strict=False):
        for start, end in _abnormal_spans(frames, labels):
            ax.axvspan(start + 1, end + 1, color="tab:red", alpha=0.2, lw=0)
        ax.plot(frames + 1, scores, color="tab:blue", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("frame", fontsize=8)
    for ax in axes.flat[len(videos) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("regularity s(t)")
    fig.suptitle("Regularity score per test video (shaded: ground-truth anomalies)", fontsize=10)
    fig.tight_layout()
    return fig


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float, eer: float) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, color="tab:blue", label=f"AUC {100 * auc:.2f} %, EER {100 * eer:.2f} %")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.plot([0, 1], [1, 0], color="tab:red", lw=0.8, ls=":", label="FPR = 1 - TPR")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Frame-level ROC (pooled)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def error_panel_figure(target: np.ndarray, output: np.ndarray, title: str) -> Figure:
    """Target frame, predicted frame and the squared-error map, side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    error = (output - target) ** 2
    for ax, image, name, cmap in zip(
        axes,
        (target, np.clip(output, 0, 1), error),
        ("target", "prediction", "squared error"),
        ("gray", "gray", "jet"),
        strict=True,
    ):
        ax.imshow(image, cmap=cmap, vmin=0, vmax=1 if cmap == "gray" else max(float(error.max()), 1e-6))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curve_figure(
    runs: Mapping[str, Sequence[dict[str, float]]],
    reference: dict[int, float] | None = None,
    paper: tuple[float, float] | None = None,
) -> Figure:
    """Each run's held-out loss by iteration (and the authors' where known), and its test AUC and EER along it.

    ``runs`` maps a name to rows of ``learning_curve.csv`` (``step``, ``train_loss``, ``val_loss``, ``auc``,
    ``eer``); a single run also shows its training loss. ``paper``: the paper's AUC and EER %, drawn as lines.
    """
    fig, (loss_ax, auc_ax, eer_ax) = plt.subplots(1, 3, figsize=(13, 3.8))
    last = 0.0
    for colour, (name, rows) in enumerate(runs.items()):
        steps = [row["step"] for row in rows]
        last, style = max([last, *steps]), {"color": f"C{colour}", "ms": 3, "label": name}
        loss_ax.plot(steps, [row["val_loss"] for row in rows], "o-", **style)
        if len(runs) == 1:
            loss_ax.plot(steps, [row["train_loss"] for row in rows], ".", color="tab:cyan",
                         label="training loss, last batch")  # fmt: skip
        auc_ax.plot(steps, [100 * row["auc"] for row in rows], "o-", **style)
        eer_ax.plot(steps, [100 * row["eer"] for row in rows], "o-", **style)
    shown = {step: loss for step, loss in (reference or {}).items() if not last or step <= 1.5 * last}
    if shown:
        loss_ax.plot(list(shown), list(shown.values()), "s--", color="black", ms=3, label="authors' log")
    if paper:
        for ax, value in zip((auc_ax, eer_ax), paper, strict=True):
            ax.axhline(value, color="black", ls="--", lw=1, label=f"paper, Table I/II: {value:g}")
    loss_ax.set(xlabel="iteration", ylabel="Eq. 1 loss", yscale="log", title="Held-out loss")
    auc_ax.set(xlabel="iteration", ylabel="%", title="Test AUC, scored along training")
    eer_ax.set(xlabel="iteration", ylabel="%", title="Test EER, scored along training")
    for ax in (loss_ax, auc_ax, eer_ax):
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, 120k
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
