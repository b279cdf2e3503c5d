"""The test protocol (REFERENCE.md section 4) on hand-made inputs with known answers, and the two tasks."""

from __future__ import annotations

import pytest
import torch

from anomaly.errors import ConfigError, ScoringError
from anomaly.protocol.metric import TestErrors, videos_of
from anomaly.protocol.scoring import (
    Protocol,
    VideoErrors,
    check_rects,
    error_mask,
    frame_errors,
    frame_metrics,
    prediction_error,
    psnr,
    regularity,
    roc_curve,
    scored_pixels,
)
from anomaly.protocol.task import split_volume, window_length

# --- prediction error (Eq. 2) ------------------------------------------------------------------------------


def test_prediction_error_sums_per_frame_l2_norms() -> None:
    target = torch.zeros(2, 2, 1, 2, 2)
    output = torch.zeros(2, 2, 1, 2, 2)
    output[0, 0, 0] = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # ||.|| = 5
    output[0, 1, 0] = torch.tensor([[0.0, 6.0], [8.0, 0.0]])  # ||.|| = 10
    output[1, 1, 0] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # ||.|| = 2
    target[1, 1, 0] = torch.tensor([[0.0, 0.0], [0.0, 2.0]])  # ... minus this: ||(1, 1, 1, -1)|| = 2
    assert prediction_error(frame_errors(output, target)).tolist() == [15.0, 2.0]


def test_prediction_error_is_not_the_norm_of_the_whole_volume() -> None:
    output = torch.ones(1, 4, 1, 3, 3)
    target = torch.zeros(1, 4, 1, 3, 3)
    assert prediction_error(frame_errors(output, target)).item() == pytest.approx(4 * 3.0)  # not sqrt(36) = 6


def test_prediction_error_with_a_mask_ignores_masked_pixels() -> None:
    output = torch.zeros(1, 2, 1, 4, 4)
    target = torch.zeros(1, 2, 1, 4, 4)
    output[0, :, 0, 0:2, 1:3] = 5.0  # only inside the masked rectangle
    output[0, 1, 0, 3, 3] = 2.0  # outside it
    mask = error_mask(4, [(0, 1, 1, 2)])
    assert prediction_error(frame_errors(output, target, mask)).tolist() == [2.0]
    assert prediction_error(frame_errors(output, target)).item() == pytest.approx(10.0 + (100.0 + 4.0) ** 0.5)


def test_psnr_is_10_log10_of_1_over_the_mse_of_the_pixels_scored() -> None:
    output = torch.full((1, 2, 1, 4, 4), 0.1)
    output[0, 1] = 0.01  # MSE 1e-4: 40 dB, mean with the first frame's 20 dB
    target = torch.zeros(1, 2, 1, 4, 4)
    assert psnr(frame_errors(output, target), scored_pixels(output[0, 0])).item() == pytest.approx(30.0)
    mask = error_mask(4, [(0, 1, 0, 3)])  # half of each frame masked
    output[0, :, 0, 0:2] = 9.0  # a masked error changes nothing
    assert scored_pixels(output[0, 0], mask) == 8
    assert psnr(frame_errors(output, target, mask), scored_pixels(output[0, 0], mask)).item() == pytest.approx(30.0)


def test_error_mask_zeroes_inclusive_rectangles() -> None:
    mask = error_mask(5, [(1, 2, 0, 1), (4, 4, 4, 4)])
    want = torch.tensor(
        [
            [1, 1, 1, 1, 1],
            [0, 0, 1, 1, 1],
            [0, 0, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 0],
        ],
        dtype=mask.dtype,
    )
    assert torch.equal(mask, want)


def test_error_mask_subway_time_stamp() -> None:
    mask = error_mask(227, [(181, 193, 81, 114), (166, 193, 126, 215)])
    assert mask.shape == (227, 227)
    assert int((mask == 0).sum()) == 13 * 34 + 28 * 90
    assert mask[181, 81] == 0 and mask[193, 114] == 0 and mask[180, 81] == 1 and mask[193, 115] == 1


def test_mask_rectangles_are_checked_and_made_plain() -> None:
    from omegaconf import OmegaConf

    rects = check_rects(OmegaConf.create([[181, 193, 81, 114]]), 227)
    assert rects == [[181, 193, 81, 114]] and type(rects[0]) is list  # plain lists: checkpoints load weights_only
    for bad in ([1, 2], [[0, 1, 0]], [[5, 3, 0, 1]], [[0, 1, 0, 227]], [[0, 1, 0, 1.5]], [[True, 1, 0, 1]]):
        with pytest.raises(ConfigError, match="expected \\[row0, row1, col0, col1\\], whole numbers from 0 to 226"):
            check_rects(bad, 227)
    with pytest.raises(ConfigError, match="covers the whole frame"):
        error_mask(227, [(0, 226, 0, 100), (0, 226, 101, 226)])


def test_no_rectangles_no_mask() -> None:
    assert error_mask(227) is None
    assert error_mask(227, []) is None


# --- regularity --------------------------------------------------------------------------------------------


def test_regularity_is_one_minus_min_max_normalised_error() -> None:
    s = regularity(torch.tensor([2.0, 4.0, 6.0, 10.0]))
    assert s.tolist() == [1.0, 0.75, 0.5, 0.0]


def test_regularity_divides_by_max_minus_min_not_max() -> None:
    s = regularity(torch.tensor([10.0, 20.0, 15.0]))
    assert s.tolist() == [1.0, 0.0, 0.5]  # Eq. 3 as printed would give 1 - 0.5 = 0.5 for the first


def test_regularity_of_constant_errors_is_one() -> None:
    assert regularity(torch.full((4,), 3.5)).tolist() == [1.0] * 4


# --- frame-level metrics -----------------------------------------------------------------------------------


def metrics(anomaly: list[float], labels: list[int], split: int | None = None) -> dict[str, float]:
    """frame_metrics of anomaly scores (given as regularity 1 - a), as one video or two."""
    s = 1 - torch.tensor(anomaly, dtype=torch.float64)
    y = torch.tensor(labels)
    if split is None:
        return frame_metrics([s], [y])
    return frame_metrics([s[:split], s[split:]], [y[:split], y[split:]])


def test_perfectly_separable_scores() -> None:
    result = metrics([0.1, 0.2, 0.3, 0.7, 0.8], [0, 0, 0, 1, 1])
    assert result["auc"] == pytest.approx(1.0)
    assert result["eer"] == pytest.approx(0.0)
    assert result["frames"] == 5


def test_inverted_scores() -> None:
    assert metrics([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])["auc"] == pytest.approx(0.0)


def test_hand_worked_auc_and_eer() -> None:
    """Positives score 0.9 and 0.5, negatives 0.7, 0.3, 0.2.

    AUC: (positive, negative) pairs ranked right: 0.9 beats all 3, 0.5 beats 2 -> 5/6.
    ROC points (FPR, TPR): (0,0) (0,1/2) (1/3,1/2) (1/3,1) (2/3,1) (1,1); |FPR - (1 - TPR)| is smallest
    (1/6) at (1/3, 1/2), so EER = (1/3 + 1/2) / 2 = 5/12. (Interpolating to FPR = 1 - TPR would give 1/3.)
    """
    result = metrics([0.9, 0.7, 0.5, 0.3, 0.2], [1, 0, 1, 0, 0])
    assert result["auc"] == pytest.approx(5 / 6)
    assert result["eer"] == pytest.approx(5 / 12)


def test_videos_are_pooled() -> None:
    """Micro: the same frames split into two videos give the same numbers, computed over all frames."""
    anomaly, labels = [0.9, 0.7, 0.5, 0.3, 0.2], [1, 0, 1, 0, 0]
    pooled, one_video = metrics(anomaly, labels, split=2), metrics(anomaly, labels)
    assert [pooled[k] for k in ("auc", "eer", "frames")] == [one_video[k] for k in ("auc", "eer", "frames")]
    # each video may hold one class alone; only the pool needs both
    assert metrics([0.9, 0.5, 0.7, 0.3, 0.2], [1, 1, 0, 0, 0], split=2)["auc"] == pytest.approx(5 / 6)


def test_scores_close_together_are_not_squashed() -> None:
    """Normalised scores go to torchmetrics untouched, however narrow their range."""
    result = metrics([0.5003, 0.5001, 0.5002, 0.5000], [1, 0, 1, 0])
    assert result["auc"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [1.5, -0.1])
def test_scores_outside_zero_one_are_rejected(bad: float) -> None:
    with pytest.raises(ScoringError, match=r"scores must lie in \[0, 1\]"):
        frame_metrics([torch.tensor([0.2, bad, 0.4])], [torch.tensor([0, 1, 0])])


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_labels_are_rejected(label: int) -> None:
    with pytest.raises(ScoringError, match=r"need both normal and abnormal frames"):
        frame_metrics([torch.tensor([0.2, 0.3]), torch.tensor([0.9])], [torch.full((2,), label), torch.tensor([label])])


def test_roc_curve_points() -> None:
    s = 1 - torch.tensor([0.9, 0.7, 0.5, 0.3, 0.2], dtype=torch.float64)
    fpr, tpr = roc_curve([s], [torch.tensor([1, 0, 1, 0, 0])])
    points = {(round(float(a), 6), round(float(b), 6)) for a, b in zip(fpr, tpr, strict=True)}
    assert points == {(0.0, 0.0), (0.0, 0.5), (0.333333, 0.5), (0.333333, 1.0), (0.666667, 1.0), (1.0, 1.0)}


# --- tasks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tau", "task", "length"),
    [(5, "prediction", 10), (2, "prediction", 4), (5, "reconstruction", 5), (1, "reconstruction", 1)],
)
def test_window_length(tau: int, task: str, length: int) -> None:
    assert window_length(tau, task) == length


@pytest.mark.parametrize("tau", [0, -1, 2.5])
def test_tau_must_be_a_positive_integer(tau) -> None:
    with pytest.raises(ConfigError, match=r"tau must be a positive integer"):
        window_length(tau, "prediction")


def test_unknown_task() -> None:
    with pytest.raises(ConfigError, match=r"task='forecast' is not one of"):
        window_length(5, "forecast")


def numbered_volume(batch: int, length: int) -> torch.Tensor:
    """(B, length, 1, 2, 2) where every pixel of frame k of item b holds 100 * b + k."""
    values = 100 * torch.arange(batch)[:, None] + torch.arange(length)[None, :]
    return values.float()[:, :, None, None, None].expand(batch, length, 1, 2, 2)


def frame_numbers(volume: torch.Tensor) -> list[list[int]]:
    return volume[:, :, 0, 0, 0].int().tolist()


def test_prediction_splits_first_tau_in_next_tau_target() -> None:
    x, y = split_volume(numbered_volume(2, 6), 3, "prediction")
    assert frame_numbers(x) == [[0, 1, 2], [100, 101, 102]]
    assert frame_numbers(y) == [[3, 4, 5], [103, 104, 105]]


def test_reconstruction_target_is_the_input_reversed() -> None:
    x, y = split_volume(numbered_volume(2, 4), 4, "reconstruction")
    assert frame_numbers(x) == [[0, 1, 2, 3], [100, 101, 102, 103]]
    assert frame_numbers(y) == [[3, 2, 1, 0], [103, 102, 101, 100]]


# --- the protocol as a whole -------------------------------------------------------------------------------


def video(index: int, errors: list[float], labels: list[int]) -> VideoErrors:
    n = len(errors)
    return VideoErrors(index, torch.arange(n) + 3, torch.tensor(errors, dtype=torch.float64), -torch.tensor(errors),
                       torch.tensor(labels))  # fmt: skip


def test_protocol_scores_each_video_on_its_own_and_pools_the_frames() -> None:
    protocol = Protocol(score="paper", smoothing_sigma=0.0, auc="micro", normalization="paper")
    evaluation = protocol.evaluate([video(0, [1.0, 2.0, 9.0], [0, 0, 1]), video(1, [10.0, 30.0, 20.0], [0, 1, 0])])
    assert [s.tolist() for s in evaluation.regularity] == [[1.0, 0.875, 0.0], [1.0, 0.0, 0.5]]
    assert evaluation.metrics["auc"] == pytest.approx(1.0) and evaluation.metrics["frames"] == 6


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_prediction_errors_stop_scoring_with_a_clear_error(bad: float) -> None:
    """A NaN used to vanish in min-max normalisation and give an AUC (66.67 %) with status ok."""
    protocol = Protocol(score="paper", smoothing_sigma=0.0, auc="micro", normalization="paper")
    videos = [video(0, [1.0, 2.0, 3.0], [0, 1, 1]), video(1, [1.0, bad, 2.0], [0, 1, 0])]
    with pytest.raises(ScoringError, match=r"not finite .* for 1 window\(s\), first in test video Test002 at frame 5"):
        protocol.evaluate(videos, ["Test001", "Test002"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"score": "ssim"}, "scoring.score='ssim'"),
        ({"auc": "weighted"}, "scoring.auc='weighted'"),
        ({"smoothing_sigma": -1.0}, "scoring.smoothing_sigma=-1.0"),
        ({"smoothing_sigma": float("nan")}, "scoring.smoothing_sigma=nan"),
        ({"normalization": "zscore"}, "scoring.normalization='zscore'"),
        ({"normalization": "calibrated", "smoothing_sigma": 2.0}, "smoothing would look at future frames"),
    ],
)
def test_bad_scoring_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Protocol(**{"score": "paper", "smoothing_sigma": 0.0, "auc": "micro", "normalization": "paper"} | settings)


def test_a_video_with_a_single_scored_window_keeps_its_shape() -> None:
    """torchmetrics squeezes one-element tensors in what compute() returns: per-video tensors must not be those."""
    metric = TestErrors()
    metric.update(torch.tensor([0, 1, 1]), torch.tensor([15, 15, 16]), torch.tensor([3.0, 4.0, 5.0]),
                  torch.tensor([20.0, 19.0, 18.0]), torch.tensor([1, 0, 1]))  # fmt: skip
    videos = videos_of(metric.compute())
    assert [v.frames.shape for v in videos] == [(1,), (2,)]
    evaluation = Protocol("paper", 0.0, "micro", "paper").evaluate(videos)
    assert [s.tolist() for s in evaluation.regularity] == [[1.0], [1.0, 0.0]]
