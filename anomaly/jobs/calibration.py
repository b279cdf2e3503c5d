"""Calibrate a set of weights on normal video: score its windows and store the error distribution with them.

Used by ``calibrate.py`` (any weights: a ``.caffemodel`` or a ``train.py`` checkpoint) and at the end of
``train.py`` (the tested checkpoint, on the held-out part of the training videos, which it never trained on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from anomaly.lightning.module import AnomalyModule
from anomaly.model.weights import save_calibration
from anomaly.protocol.calibration import Calibration


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
