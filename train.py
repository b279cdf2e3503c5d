"""Train (and test) the encoder-forecaster: ``python train.py [dataset=ped2] [task=...] [tau=...]``.

Multirun: ``python train.py -m dataset=ped2 tau=2,5,8 task=prediction,reconstruction``.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from anomaly.jobs.calibration import calibrate_checkpoint, use_calibration
from anomaly.jobs.run import build, check_before_training, run_job, test_results, tested_checkpoint
from anomaly.model.weights import check_checkpoint


def train(cfg: DictConfig) -> dict[str, Any]:
    if cfg.ckpt_path is not None:  # resume only a run of the same tau and task
        check_checkpoint(cfg.ckpt_path, cfg.tau, cfg.task.name)
    datamodule, module, trainer = build(cfg)
    check_before_training(cfg, trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    tested = tested_checkpoint(trainer, cfg.test_checkpoint)
    results: dict[str, Any] = {"tested": tested}
    if cfg.calibrate and tested["checkpoint"]:
        results["calibration"] = calibrate_checkpoint(trainer, module, datamodule, tested["checkpoint"])
    if cfg.test:
        use_calibration(trainer, cfg, tested["checkpoint"])
        trainer.test(module, datamodule=datamodule, ckpt_path=tested["checkpoint"], weights_only=True)
        # the test's "calibration" (source, windows) is part of the record made above, which also says where it is
        results = test_results(trainer) | results
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run_job(cfg, train)


if __name__ == "__main__":
    main()
