"""Train (and test) the encoder-forecaster: ``python train.py [dataset=ped2] [task=...] [tau=...]``.

Multirun: ``python train.py -m dataset=ped2 tau=2,5,8 task=prediction,reconstruction``.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint

from anomaly.run import build, print_metrics, run_job, test_results


def train(cfg: DictConfig) -> dict[str, Any]:
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    checkpoints = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    best = next((c.best_model_path for c in checkpoints if c.best_model_path), None)
    last = next((c.last_model_path for c in checkpoints if c.last_model_path), None)
    results: dict[str, Any] = {"checkpoint": best or last, "last_checkpoint": last}
    if cfg.test:
        trainer.test(module, datamodule=datamodule, ckpt_path=best or last)
        results.update(test_results(module, datamodule))
        print_metrics(results)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run_job(cfg, train)


if __name__ == "__main__":
    main()
