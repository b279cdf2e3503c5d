"""Calibrate a set of weights on normal video: score its windows and store the error distribution with them.

Used by ``calibrate.py`` (any weights: a ``.caffemodel`` or a ``train.py`` checkpoint) and at the end of
``train.py`` (the tested checkpoint, on the held-out part of the training videos, which it never trained on).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from anomaly.data.datamodule import VideoDataModule
from anomaly.errors import ConfigError
from anomaly.lightning.callbacks import TestScoring, find_callback
from anomaly.lightning.module import AnomalyModule
from anomaly.model.weights import find_calibration, save_calibration
from anomaly.protocol.calibration import Calibration

log = logging.getLogger("anomaly")


def calibrate(
    trainer: pl.Trainer,
    module: AnomalyModule,
    normal: DataLoader,
    weights: str | Path,
    source: str,
    out: str | None = None,
    ckpt_path: str | None = None,
) -> dict[str, Any]:
    """Score ``normal`` windows with ``module`` (or the weights of ``ckpt_path``) and store the calibration with
    ``weights``; what to put in ``results.json``."""
    outputs = trainer.predict(module, dataloaders=normal, ckpt_path=ckpt_path, weights_only=True)
    errors = torch.cat([o["errors"] for o in outputs]).numpy()
    hparams = module.hparams
    calibration = Calibration.from_errors(errors, hparams.tau, hparams.task, source, hparams.mask)
    where = save_calibration(weights, calibration, out)
    summary = {
        "source": source,
        "windows": calibration.windows,
        "stored_in": str(where),
        "thresholds": {f"{rate:g}": calibration.threshold(rate) for rate in (0.1, 0.05, 0.01, 0.001)},
    }
    print(f"calibration of {weights}: {calibration.windows} normal windows of {source}; threshold at a 1 % "
          f"false-alarm rate: e = {summary['thresholds']['0.01']:.2f}; stored in {where}")  # fmt: skip
    return summary


def calibrate_checkpoint(trainer: pl.Trainer, module: AnomalyModule, datamodule: VideoDataModule,
                         checkpoint: str) -> dict[str, Any]:  # fmt: skip
    """After training: calibrate ``checkpoint`` on normal video it never trained on (the held-out part of the
    training videos; all of them when nothing is held out). Too little normal video skips it, with a warning:
    the model is still trained and tested."""
    normal = "heldout" if datamodule.val_fraction > 0 else "train"
    if trainer.world_size > 1:  # each process would see a part of the windows and write the same file
        reason = f"trained on {trainer.world_size} processes: calibrate on one with calibrate.py weights={checkpoint}"
        log.warning("no calibration stored: %s", reason)
        return {"skipped": reason}
    try:
        loader, source = datamodule.normal_dataloader(normal), f"{datamodule.dataset.name} {normal}"
        return calibrate(trainer, module, loader, checkpoint, source, ckpt_path=checkpoint)
    except ConfigError as err:
        log.warning("no calibration stored: %s", err)
        return {"skipped": str(err)}


def use_calibration(trainer: pl.Trainer, cfg: DictConfig, weights: str, explicit: str | None = None) -> None:
    """Under ``scoring.normalization=calibrated``: the test pass ranks each error among the normal-video errors of
    the calibration stored with ``weights`` (or in the file ``explicit``)."""
    if cfg.scoring.normalization != "calibrated":
        return
    calibration, where = find_calibration(weights, explicit)
    calibration.check(cfg.tau, cfg.task.name, str(where))
    find_callback(trainer, TestScoring).calibration = calibration
