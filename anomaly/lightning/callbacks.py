"""Callbacks around a test pass: scoring and frames/s, pictures, localisation maps, and the learning curve.

The LightningModule only feeds its :class:`TestErrors` metric; these callbacks turn it into what people
read: AUC / EER (logged), per-video regularity curves, the ROC, the most anomalous window, and, during
training, the test AUC / EER beside the held-out loss every few epochs.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from tqdm import tqdm

from anomaly.atomic import atomic_path, write_atomic
from anomaly.errors import ConfigError
from anomaly.protocol.calibration import AlarmSettings, Calibration
from anomaly.protocol.metric import TestErrors, videos_of
from anomaly.protocol.scoring import Evaluation, Protocol, roc_curve
from anomaly.reporting.plots import (
    error_panel_figure,
    learning_curve_figure,
    regularity_figure,
    roc_figure,
    write_figure,
)
from anomaly.reporting.published import AUTHORS_HELDOUT_LOSS, paper_scores

log = logging.getLogger(__name__)


def test_video_names(trainer: pl.Trainer) -> list[str] | None:
    datamodule = getattr(trainer, "datamodule", None)
    return [video.name for video in datamodule.test_videos] if datamodule is not None else None


class TestScoring(pl.Callback):
    """Scores the test pass with the protocol (``conf/scoring``), times it, and logs ``test/auc|eer|fps``.

    After ``trainer.test``, :attr:`evaluation` holds the per-video scores and the metrics (with ``fps``:
    scored frames per second of the whole test pass, data loading included). The calibrated protocol
    needs :attr:`calibration` set (``eval.py`` sets it from the weights) and uses the ``alarm`` settings.
    """

    __test__ = False

    def __init__(self, score: str, smoothing_sigma: float, auc: str, normalization: str,
                 alarm: dict[str, Any]) -> None:  # fmt: skip
        self.protocol = Protocol(score, float(smoothing_sigma), auc, normalization)
        self.alarm = AlarmSettings(**alarm)
        self.calibration: Calibration | None = None
        self.evaluation: Evaluation | None = None
        self._started = 0.0

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.evaluation, self._started = None, time.perf_counter()

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = time.perf_counter() - self._started
        datamodule = trainer.datamodule
        self.evaluation = self.protocol.evaluate(videos_of(pl_module.test_errors.compute()), test_video_names(trainer),
                                                 self.calibration, self.alarm, datamodule.dataset.fps)  # fmt: skip
        metrics = self.evaluation.metrics
        metrics["fps"] = metrics["frames"] / max(seconds, 1e-9)
        if "auc" not in metrics:
            log.warning("no AUC/EER: the scored frames need ground truth with both normal and abnormal frames")
        for name in ("auc", "eer", "fps"):
            if name in metrics:
                pl_module.log(f"test/{name}", float(metrics[name]), rank_zero_only=True)


def find_callback(trainer: pl.Trainer, kind: type[pl.Callback]) -> Any:
    found = [c for c in trainer.callbacks if isinstance(c, kind)]
    if not found:
        raise ConfigError(f"no {kind.__name__} callback: keep callbacks.scoring in the config (conf/callbacks)")
    return found[0]


def save_figure(figure: Figure, path: Path, trainer: pl.Trainer, key: str) -> None:
    """Write ``figure`` as PNG atomically and log it to every W&B logger under ``key``."""
    write_figure(figure, path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)])


class TestPictures(pl.Callback):
    """Regularity curves (paper Fig. 2), ROC curve and a target/prediction/error panel (paper Fig. 3)."""

    __test__ = False

    def __init__(self, output_dir: str) -> None:
        self.plots = Path(output_dir) / "plots"
        self.worst: dict[str, Any] = {}

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.worst = {}

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        errors = outputs["errors"]
        k = int(errors.argmax())
        if not self.worst or errors[k] > self.worst["error"]:
            self.worst = {
                "error": errors[k].item(),
                "target": outputs["last_target"][k, 0].cpu().numpy(),
                "output": outputs["last_output"][k, 0].cpu().numpy(),
                "video": int(outputs["video"][k]),
                "frame": int(outputs["frame"][k]),
            }

    @rank_zero_only
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        evaluation: Evaluation | None = find_callback(trainer, TestScoring).evaluation
        if evaluation is None or not evaluation.videos:
            return
        names = test_video_names(trainer) or [str(v.index) for v in evaluation.videos]
        curves = [
            (names[v.index], v.frames.numpy(), s.numpy(), v.labels.numpy())
            for v, s in zip(evaluation.videos, evaluation.regularity, strict=True)
        ]
        figures = {"regularity": regularity_figure(curves)}
        if "auc" in evaluation.metrics:
            fpr, tpr = roc_curve(*evaluation.labelled())
            figures["roc"] = roc_figure(fpr.numpy(), tpr.numpy(), evaluation.metrics["auc"], evaluation.metrics["eer"])
        if self.worst:
            title = f"highest prediction error: {names[self.worst['video']]}, frame {self.worst['frame'] + 1}"
            figures["error_map"] = error_panel_figure(self.worst["target"], self.worst["output"], title)
        self.plots.mkdir(parents=True, exist_ok=True)
        for name, figure in figures.items():
            save_figure(figure, self.plots / f"{name}.png", trainer, f"test/{name}")


class LocalisationMaps(pl.Callback):
    """Pixel-level localisation: ``plots/maps/<video>.npz`` of every scored frame's squared error, pooled 4x4.

    Each file holds ``frames`` (0-based scored frames) and ``maps`` (T, 56, 56) float16. Off unless
    ``scoring.save_maps=true``; needs a single device (the maps are not gathered across processes).
    """

    def __init__(self, output_dir: str, enabled: bool) -> None:
        self.folder = Path(output_dir) / "plots" / "maps"
        self.enabled = enabled
        self.maps: dict[int, list[tuple[int, torch.Tensor]]] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Refuses more than one device when the run starts (before training, not at its test)."""
        if self.enabled and trainer.world_size > 1:
            raise ConfigError("scoring.save_maps=true needs a single device (trainer.devices=1)")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.maps = {}

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        if not self.enabled:
            return
        squared = (outputs["last_output"] - outputs["last_target"]).square()
        if pl_module.mask is not None:
            squared = squared * pl_module.mask
        pooled = torch.nn.functional.avg_pool2d(squared, 4)[:, 0].half().cpu()
        for v, f, m in zip(outputs["video"].tolist(), outputs["frame"].tolist(), pooled, strict=True):
            self.maps.setdefault(v, []).append((f, m))

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.maps:
            return
        names = test_video_names(trainer)
        self.folder.mkdir(parents=True, exist_ok=True)
        for index, entries in self.maps.items():
            entries.sort(key=lambda entry: entry[0])
            frames, stacked = np.array([f for f, _ in entries]), torch.stack([m for _, m in entries]).numpy()
            with atomic_path(self.folder / f"{names[index] if names else index}.npz") as tmp:
                np.savez_compressed(tmp, frames=frames, maps=stacked)


CURVE_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "auc", "eer"]


class LearningCurve(pl.Callback):
    """Every ``every_n_epochs`` epochs, scores the test set with the current weights (observation only).

    Logs ``curve/auc``, ``curve/eer`` and ``curve/val_loss`` at the global step to every logger, and keeps
    ``learning_curve.csv`` and ``plots/learning_curve.png`` in the run folder up to date, with the authors'
    logged held-out loss drawn beside ours where it is known (Ped2), and the paper's AUC / EER where its Tables
    I/II have this dataset, task and tau and the scoring is the paper's. The model that is tested and reported
    at the end is unaffected. ``every_n_epochs=0`` turns it off. Under DDP the first process scores.
    """

    def __init__(self, every_n_epochs: int, output_dir: str, dataset: str, task: str, tau: int, score: str,
                 smoothing_sigma: float, auc: str, mask: Sequence[object]) -> None:  # fmt: skip
        if not isinstance(every_n_epochs, int) or every_n_epochs < 0:
            raise ConfigError(f"test_every_n_epochs={every_n_epochs!r}: must be an integer >= 0 (0: off)")
        self.every = every_n_epochs
        self.output_dir = Path(output_dir)
        self.reference = AUTHORS_HELDOUT_LOSS.get(dataset)
        scoring = {"score": score, "smoothing_sigma": smoothing_sigma, "auc": auc, "mask": bool(mask)}
        self.paper = paper_scores(task, tau, dataset, scoring)
        self.protocol = Protocol(score, float(smoothing_sigma), auc, "paper")  # the weights change: no calibration
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not self.every or epoch % self.every or trainer.sanity_checking:
            return
        if trainer.is_global_zero:
            evaluation = self.score(trainer, pl_module)
            logged = trainer.callback_metrics
            row = {
                "epoch": epoch,
                "step": trainer.global_step,
                "train_loss": float(logged["train/loss"]) if "train/loss" in logged else float("nan"),
                "val_loss": float(logged["val/loss"]) if "val/loss" in logged else float("nan"),
                "auc": evaluation.metrics.get("auc", float("nan")),
                "eer": evaluation.metrics.get("eer", float("nan")),
            }
            self.rows.append(row)
            for logger in trainer.loggers:
                logger.log_metrics({f"curve/{k}": row[k] for k in ("auc", "eer", "val_loss")}, step=row["step"])
            self.write(trainer)
        trainer.strategy.barrier()

    def score(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Evaluation:
        """The test pass of ``trainer.test``, run by hand on the current weights."""
        metric = TestErrors(sync_on_compute=False).to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        loader = tqdm(trainer.datamodule.test_dataloader(), desc="learning curve: scoring the test set", leave=False)
        try:
            with torch.inference_mode(), trainer.precision_plugin.forward_context():
                for volume, video, frame, label in loader:
                    out = pl_module.window_errors(volume.to(pl_module.device))
                    metric.update(video, frame, out["errors"], out["psnr"], label)
        finally:
            pl_module.train(was_training)
        return self.protocol.evaluate(videos_of(metric.compute()), test_video_names(trainer))

    def write(self, trainer: pl.Trainer) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, CURVE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.output_dir / "learning_curve.csv", text.getvalue())
        (self.output_dir / "plots").mkdir(parents=True, exist_ok=True)
        figure = learning_curve_figure({"ours": self.rows}, self.reference, self.paper)
        save_figure(figure, self.output_dir / "plots" / "learning_curve.png", trainer, "curve/plot")

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state.get("rows", []))
