"""LightningModule: the paper's training recipe and test protocol around :class:`EncoderForecaster`.

- Loss (Eq. 1): squared error summed over the output volume, divided by ``2 * N * tau``.
- Adam (lr 1e-4, betas 0.9/0.999) with coupled L2 weight decay 5e-4 (Caffe adds the decay to the gradient,
  as ``torch.optim.Adam(weight_decay=...)`` does); conv/deconv biases are not decayed.
- Test: every stride-1 window of every test video gives one prediction error (Eq. 2), scored on the
  window's last frame; ``anomaly.scoring`` turns them into regularity and frame-level AUC / EER.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from anomaly.model.convlstm import EncoderForecaster
from anomaly.scoring import SCORES, Rect, error_mask, frame_metrics, prediction_error, psnr, video_regularity
from anomaly.task import check_task, split_volume

log = logging.getLogger(__name__)

COLUMNS = 5  # test rows: video, scored frame, prediction error (Eq. 2), PSNR, label


@dataclass
class VideoResult:
    """Per-video test output: scored frame indices (0-based), raw errors, scores, labels (-1: unknown)."""

    index: int
    frames: Tensor
    errors: Tensor
    regularity: Tensor
    labels: Tensor


class AnomalyModule(pl.LightningModule):
    def __init__(
        self,
        tau: int = 5,
        task: str = "prediction",
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 5e-4,
        mask: list[Rect] | tuple[Rect, ...] = (),
        score: str = "paper",
        smoothing_sigma: float = 0.0,
        auc: str = "micro",
        save_maps: bool = False,
    ) -> None:
        super().__init__()
        check_task(task, tau)
        # Scoring settings are checked here, before any training, not when the test finally runs.
        if auc not in ("micro", "macro"):
            raise ValueError(f"scoring.auc={auc!r}: expected 'micro' (pooled, the paper) or 'macro'")
        if score not in SCORES:
            raise ValueError(f"scoring.score={score!r}: expected one of {SCORES}")
        if smoothing_sigma < 0:
            raise ValueError(f"scoring.smoothing_sigma={smoothing_sigma}: must be >= 0 (frames; 0 = no smoothing)")
        # Plain Python types (not Hydra's ListConfig), so checkpoints load with torch.load(weights_only=True).
        betas, mask = (float(betas[0]), float(betas[1])), [[int(v) for v in rect] for rect in mask]
        self.save_hyperparameters()
        self.net = EncoderForecaster()
        mask_tensor = error_mask(EncoderForecaster.FRAME_SIZE, [tuple(r) for r in mask])
        self.register_buffer("mask", mask_tensor, persistent=False)
        self.test_results: list[VideoResult] = []
        self.test_metrics: dict[str, float] = {}
        self.example: dict[str, Tensor] = {}
        self.maps: dict[int, list[tuple[int, Tensor]]] = {}

    def forward(self, frames: Tensor) -> Tensor:
        return self.net(frames, tau_out=self.hparams.tau)

    def _loss(self, volume: Tensor) -> Tensor:
        inputs, target = split_volume(volume, self.hparams.tau, self.hparams.task)
        output = self(inputs)
        return (output - target).square().sum() / (2 * volume.shape[0] * self.hparams.tau)

    def training_step(self, volume: Tensor, batch_idx: int) -> Tensor:
        loss = self._loss(volume)
        self.log("train/loss", loss, prog_bar=True, batch_size=volume.shape[0])
        return loss

    def validation_step(self, volume: Tensor, batch_idx: int) -> Tensor:
        loss = self._loss(volume)
        self.log("val/loss", loss, prog_bar=True, batch_size=volume.shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Caffe excludes the conv/deconv biases from weight decay; the ConvLSTM biases (inside the cells) are decayed.
        layers = [m for m in self.net.children() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        undecayed = {id(layer.bias) for layer in layers}
        params = list(self.net.parameters())
        groups = [
            {
                "params": [p for p in params if id(p) not in undecayed],
                "weight_decay": self.hparams.weight_decay,
            },
            {"params": [p for p in params if id(p) in undecayed], "weight_decay": 0.0},
        ]
        return torch.optim.Adam(groups, lr=self.hparams.lr, betas=tuple(self.hparams.betas))

    # --- test: the paper's scoring ---------------------------------------------------------------------

    def on_test_epoch_start(self) -> None:
        self._outputs: list[Tensor] = []
        self._started = time.perf_counter()
        self.example, self.maps = {}, {}
        if self.hparams.save_maps and self.trainer.world_size > 1:
            raise ValueError("scoring.save_maps=true needs a single device (trainer.devices=1)")

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor, Tensor], batch_idx: int) -> None:
        volume, video, frame, label = batch
        inputs, target = split_volume(volume, self.hparams.tau, self.hparams.task)
        output = self(inputs)
        errors = prediction_error(output, target, self.mask)
        quality = psnr(output, target, self.mask)
        columns = [video, frame, errors, quality, label]
        self._outputs.append(torch.stack([c.double() for c in columns], 1))
        if self.hparams.save_maps:
            self._keep_maps(output, target, video, frame)
        worst = int(errors.argmax())
        if not self.example or errors[worst] > self.example["error"]:
            self.example = {
                "error": errors[worst].detach().cpu(),
                "target": target[worst, -1, 0].detach().cpu(),
                "output": output[worst, -1, 0].detach().cpu(),
                "video": video[worst].cpu(),
                "frame": frame[worst].cpu(),
            }

    def _keep_maps(self, output: Tensor, target: Tensor, video: Tensor, frame: Tensor) -> None:
        """Pixel-level localisation: the squared error of each window's scored frame, pooled 4x4 (56x56)."""
        squared = (output[:, -1] - target[:, -1]).square()
        if self.mask is not None:
            squared = squared * self.mask
        pooled = torch.nn.functional.avg_pool2d(squared, 4)[:, 0].half().cpu()
        for v, f, m in zip(video.tolist(), frame.tolist(), pooled, strict=True):
            self.maps.setdefault(v, []).append((f, m))

    def on_test_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self._started
        rows = torch.cat(self._outputs) if self._outputs else torch.zeros(0, COLUMNS, dtype=torch.float64)
        rows = self.all_gather(rows.to(self.device)).reshape(-1, COLUMNS).cpu()
        # Distributed samplers pad with repeated windows: keep one row per (video, frame).
        _, inverse = torch.unique(rows[:, :2], dim=0, return_inverse=True)
        rows = rows[_first_indices(inverse)]
        self.test_results = []
        for v in rows[:, 0].unique().long().tolist():
            own = rows[rows[:, 0] == v]
            own = own[own[:, 1].argsort()]
            scores = video_regularity(own[:, 2], own[:, 3], self.hparams.score, self.hparams.smoothing_sigma)
            self.test_results.append(VideoResult(v, own[:, 1].long(), own[:, 2], scores, own[:, 4].long()))
        labelled = [r for r in self.test_results if (r.labels >= 0).all()]
        metrics: dict[str, float] = {"frames": float(len(rows)), "fps": len(rows) / max(elapsed, 1e-9)}
        classes = torch.cat([r.labels for r in labelled]).unique().numel() if labelled else 0
        if classes == 2:
            metrics.update(frame_metrics([r.regularity for r in labelled], [r.labels for r in labelled]))
            if self.hparams.auc == "macro":  # beyond the paper: the headline AUC is the per-video mean
                metrics["micro_auc"], metrics["auc"] = metrics["auc"], metrics["macro_auc"]
        else:
            log.warning("no AUC/EER: the scored frames need ground truth with both normal and abnormal frames")
        self.test_metrics = metrics
        for name in ("auc", "eer", "fps"):
            if name in metrics:
                self.log(f"test/{name}", float(metrics[name]), rank_zero_only=True)


def _first_indices(inverse: Tensor) -> Tensor:
    """Index of the first occurrence of each unique value, given ``torch.unique(..., return_inverse)``."""
    order = torch.arange(len(inverse))
    first = torch.full((int(inverse.max()) + 1 if len(inverse) else 0,), len(inverse), dtype=torch.long)
    return first.scatter_reduce(0, inverse, order, reduce="amin")
