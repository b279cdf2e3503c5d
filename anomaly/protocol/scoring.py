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

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_eer, binary_roc

from anomaly.errors import ConfigError, ScoringError
from anomaly.protocol.calibration import AlarmSettings, Calibration, alarms_of, operating_point

SCORES = ("paper", "psnr")
AUCS = ("micro", "macro")
NORMALIZATIONS = ("paper", "calibrated")
Rect = tuple[int, int, int, int]  # (row0, row1, col0, col1), 0-based, inclusive


def check_rects(rects: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """``rects`` as plain lists (for checkpoints), each checked to be ``[row0, row1, col0, col1]`` inside the frame.

    Raises:
        ConfigError: a rectangle of another form, or outside the frame.
    """
    plain = []
    for rect in rects:
        values = list(rect) if isinstance(rect, Sequence) and not isinstance(rect, str) else [rect]
        whole = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < size for v in values)
        if not (len(values) == 4 and whole and values[0] <= values[1] and values[2] <= values[3]):
            raise ConfigError(
                f"mask rectangle {rect!r} (dataset.mask, or mask= of detect.py): expected [row0, row1, col0, col1], "
                f"whole numbers from 0 to {size - 1} in {size}x{size} frame coordinates, with row0 <= row1 and "
                f"col0 <= col1"
            )
        plain.append(values)
    return plain


def error_mask(size: int, rects: list[Rect] | tuple[Rect, ...] = ()) -> Tensor | None:
    """A (size, size) 0/1 mask that zeroes ``rects`` of the error map (e.g. Subway's time stamp).

    Raises:
        ConfigError: the rectangles cover the whole frame, so nothing would be left to score.
    """
    if not rects:
        return None
    mask = torch.ones(size, size)
    for row0, row1, col0, col1 in rects:
        mask[row0 : row1 + 1, col0 : col1 + 1] = 0
    if not mask.any():
        raise ConfigError(f"the mask {[list(rect) for rect in rects]} covers the whole frame: nothing would be left "
                          "to score")  # fmt: skip
    return mask


def frame_errors(output: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B, tau, C, H, W) twice -> (B, tau): the L2 norm of each output frame's error over its pixels (those
    ``mask`` keeps).

    One fused reduction over the frame's own dimensions, no squared-error volume written out. Not over the frame
    flattened: the network's output is a crop (rows 228 apart), so flattening it copies it in eager, and compiled,
    inductor then indexed each pixel with a division and summed one at a time (a test batch's norms 3.5 against
    1.2 ms compiled, 3.1 against 2.7 ms eager: ``python docs/scoring_profile.py``; docs/benchmarks.md).
    """
    difference = output - target
    if mask is not None:
        difference = difference * mask
    return torch.linalg.vector_norm(difference, dim=(-3, -2, -1))


def prediction_error(norms: Tensor) -> Tensor:
    """Eq. 2 for a batch: (B, tau) per-frame L2 norms (:func:`frame_errors`) -> (B,), their sum over frames."""
    return norms.sum(dim=1)


def scored_pixels(frame: Tensor, mask: Tensor | None = None) -> int:
    """Pixels of an output ``frame`` (C, H, W) that :func:`frame_errors` covers: all, or those ``mask`` keeps."""
    return frame.numel() if mask is None else int(mask.sum()) * frame.shape[0]


def psnr(norms: Tensor, pixels: int) -> Tensor:
    """Mean over the output frames of ``10 log10(1 / MSE)``, MSE = norm^2 / ``pixels``, from the (B, tau) per-frame
    norms of :func:`frame_errors` (for ``score=psnr``, as later work scores)."""
    mse = norms.square() / pixels
    return (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean(dim=1)


def smooth(values: Tensor, sigma: float) -> Tensor:
    """Gaussian temporal smoothing with ``sigma`` in frames (0: unchanged); edges repeat the end values."""
    if sigma <= 0:
        return values
    return torch.from_numpy(gaussian_filter1d(values.double().numpy(), sigma, mode="nearest"))


def regularity(errors: Tensor) -> Tensor:
    """Regularity of one video's windows: ``1 - (e - min e) / (max e - min e)``; 1 where e is constant."""
    errors = errors.double()
    span = errors.max() - errors.min()
    if span == 0:
        return torch.ones_like(errors)
    return 1 - (errors - errors.min()) / span


def video_regularity(errors: Tensor, quality: Tensor, score: str = "paper", sigma: float = 0.0) -> Tensor:
    """Regularity of one video's windows under the configured protocol.

    ``score="paper"``: ``regularity`` of the prediction errors (Eq. 2-3). ``score="psnr"``: min-max normalised
    PSNR (higher PSNR = more regular). ``sigma > 0`` smooths the raw values over time first.
    """
    if score == "paper":
        return regularity(smooth(errors, sigma))
    if score == "psnr":
        return 1 - regularity(smooth(quality, sigma))
    raise ConfigError(f"scoring.score={score!r}: expected one of {SCORES}")


def frame_metrics(scores: list[Tensor], labels: list[Tensor]) -> dict[str, float]:
    """Pooled (micro) frame-level AUC and EER of per-video regularity scores in [0, 1] and 0/1 labels.

    Scores must already be normalised: torchmetrics applies a sigmoid to inputs outside [0, 1].
    """
    anomaly = 1 - torch.cat(scores).double()
    target = torch.cat(labels).long()
    if anomaly.numel() and (anomaly.min() < 0 or anomaly.max() > 1):
        raise ScoringError("scores must lie in [0, 1]; normalise each video's errors first (regularity())")
    if target.unique().numel() < 2:
        raise ScoringError("frame-level AUC/EER need both normal and abnormal frames among the scored frames")
    per_video = [
        float(binary_auroc(1 - s.double(), y.long()))
        for s, y in zip(scores, labels, strict=True)
        if y.unique().numel() == 2
    ]
    return {
        "auc": float(binary_auroc(anomaly, target)),
        "eer": float(binary_eer(anomaly, target)),
        "frames": int(target.numel()),
        # Beyond the paper: mean of per-video AUCs over the videos that hold both classes.
        "macro_auc": sum(per_video) / len(per_video) if per_video else float("nan"),
        "macro_auc_videos": len(per_video),
    }


def roc_curve(scores: list[Tensor], labels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(FPR, TPR) of the pooled frame-level ROC, for plots."""
    fpr, tpr, _ = binary_roc(1 - torch.cat(scores).double(), torch.cat(labels).long())
    return fpr, tpr


@dataclass
class VideoErrors:
    """One test video's windows: scored frames (0-based), Eq. 2 errors, PSNR and frame labels (-1: unknown)."""

    index: int
    frames: Tensor
    errors: Tensor
    psnr: Tensor
    labels: Tensor

    @property
    def labelled(self) -> bool:
        return bool((self.labels >= 0).all())


@dataclass(frozen=True)
class Evaluation:
    """A scored test: each video's regularity s(t) beside its errors, the frame-level metrics and, under the
    calibrated protocol, each video's 0/1 alarms and the ground-truth events they caught."""

    videos: list[VideoErrors]
    regularity: list[Tensor]
    metrics: dict[str, float]
    alarms: list[Tensor] | None = None
    gt_events: list[dict] | None = None

    def labelled(self) -> tuple[list[Tensor], list[Tensor]]:
        """(regularity, labels) of the videos with ground truth, for metrics and the ROC curve."""
        pairs = [(s, v.labels) for v, s in zip(self.videos, self.regularity, strict=True) if v.labelled]
        return [s for s, _ in pairs], [y for _, y in pairs]


@dataclass(frozen=True)
class Protocol:
    """How prediction errors become scores and metrics (``conf/scoring``; the paper's by default there).

    Args:
        score: ``paper`` (Eq. 2 error) or ``psnr`` (PSNR, as later work scores).
        smoothing_sigma: Gaussian temporal smoothing of each video's raw values, in frames (0: none).
        auc: ``micro`` (all scored frames pooled, the paper) or ``macro`` (mean of per-video AUCs) as the
            headline ``auc``; both are always in the metrics.
        normalization: ``paper`` (per-video min-max, Eq. 3: known only once a video has ended) or
            ``calibrated`` (the error's rank among normal windows of a stored calibration: causal), which
            also gives the operating point of the calibrated alarm threshold.
    """

    score: str
    smoothing_sigma: float
    auc: str
    normalization: str

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"scoring.score={self.score!r}: expected one of {SCORES}")
        if self.auc not in AUCS:
            raise ConfigError(f"scoring.auc={self.auc!r}: expected 'micro' (pooled, the paper) or 'macro'")
        if not self.smoothing_sigma >= 0:
            raise ConfigError(
                f"scoring.smoothing_sigma={self.smoothing_sigma}: must be >= 0 (frames; 0 = no smoothing)"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"scoring.normalization={self.normalization!r}: expected one of {NORMALIZATIONS}")
        if self.normalization == "calibrated" and (self.score != "paper" or self.smoothing_sigma > 0):
            raise ConfigError(
                "scoring.normalization=calibrated scores the Eq. 2 error of each window as it comes: use it with "
                "scoring.score=paper and scoring.smoothing_sigma=0 (smoothing would look at future frames)"
            )

    def evaluate(
        self,
        videos: list[VideoErrors],
        names: list[str] | None = None,
        calibration: Calibration | None = None,
        alarm: AlarmSettings | None = None,
        fps: float = 0.0,
    ) -> Evaluation:
        """Regularity of every video and, where ground truth holds both classes, AUC / EER (and, calibrated,
        the operating point of the alarms: ``alarm`` settings, ``fps`` for false alarms per minute).

        Raises:
            ScoringError: when a prediction error is NaN or infinite (weights with NaN, a diverged training):
                min-max normalisation would turn them into a silently wrong AUC.
        """
        for video in videos:
            bad = ~torch.isfinite(video.errors)
            if bad.any():
                first = int(video.frames[bad.nonzero()[0, 0]])
                name = names[video.index] if names else f"#{video.index}"
                raise ScoringError(
                    f"the prediction error is not finite (NaN or inf) for {int(bad.sum())} window(s), first in "
                    f"test video {name} at frame {first + 1}: the weights hold NaN/inf values or training "
                    f"diverged; check the weights file or train again (e.g. with a lower model.lr)"
                )
        if self.normalization == "calibrated":
            if calibration is None or alarm is None:
                raise ConfigError("scoring.normalization=calibrated needs the calibration of the weights")
            regularity = [1 - torch.from_numpy(calibration.score(v.errors.numpy())) for v in videos]
        else:
            regularity = [video_regularity(v.errors, v.psnr, self.score, self.smoothing_sigma) for v in videos]
        evaluation = Evaluation(videos, regularity, {"frames": float(sum(len(v.frames) for v in videos))})
        scores, labels = evaluation.labelled()
        if labels and torch.cat(labels).unique().numel() == 2:
            evaluation.metrics.update(frame_metrics(scores, labels))
            if self.auc == "macro":  # beyond the paper: the headline AUC is the per-video mean
                evaluation.metrics["micro_auc"] = evaluation.metrics["auc"]
                evaluation.metrics["auc"] = evaluation.metrics["macro_auc"]
        if self.normalization == "calibrated":
            alarms = [
                torch.from_numpy(alarms_of(v.frames.numpy(), v.errors.numpy(), 1 - s.numpy(), calibration, alarm))
                for v, s in zip(videos, regularity, strict=True)
            ]
            labelled = [(v.frames.numpy(), a.numpy(), v.labels.numpy()) for v, a in zip(videos, alarms, strict=True)]
            point = operating_point([item for item, v in zip(labelled, videos, strict=True) if v.labelled], fps)
            gt_events = point.pop("gt_events")
            evaluation.metrics.update(point | {"threshold": calibration.threshold(alarm.false_alarm_rate)})
            evaluation = Evaluation(videos, regularity, evaluation.metrics, alarms, gt_events)
        return evaluation
