"""Calibrate weights on normal video: ``python calibrate.py dataset=ped2 weights=PATH [normal=train|heldout|folder]``.

Scores the windows of normal video (the dataset's training videos by default; ``normal=heldout`` the held-out
part of them; ``normal=folder normal_dir=PATH`` your own normal clips) and stores the distribution of the
prediction error with the weights: inside a ``train.py`` checkpoint, or beside a ``.caffemodel`` as
``<weights>.calibration.json`` (``out=PATH`` to write it elsewhere). ``detect.py`` and
``eval.py scoring.normalization=calibrated`` find it there. No test label is ever used.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from anomaly.jobs.calibration import calibrate
from anomaly.jobs.run import build, run_job
from anomaly.model.weights import check_calibration_target, load_weights


def main_job(cfg: DictConfig) -> dict[str, Any]:
    datamodule, module, trainer = build(cfg)
    load_weights(module.net, cfg.weights, cfg.tau, cfg.task.name)
    check_calibration_target(cfg.weights, cfg.out)
    normal = datamodule.normal_dataloader(cfg.normal, cfg.normal_dir)
    source = f"{cfg.dataset.name} {cfg.normal}" if cfg.normal != "folder" else str(cfg.normal_dir)
    return {"calibration": calibrate(trainer, module, normal, cfg.weights, source, cfg.out)}


@hydra.main(version_base="1.3", config_path="conf", config_name="calibrate")
def main(cfg: DictConfig) -> None:
    run_job(cfg, main_job)


if __name__ == "__main__":
    main()
