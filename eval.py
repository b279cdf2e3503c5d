"""Score a trained model on a dataset's test videos with the paper's protocol.

``python eval.py dataset=ped2 weights=PATH`` where PATH is one of the authors' ``.caffemodel`` files or a
checkpoint of ``train.py``. Prints AUC, EER, scored frames and frames/s; writes ``results.json``.
``scoring.normalization=calibrated`` scores with the calibration stored with the weights (``calibrate.py``)
and also prints the operating point of its alarm threshold.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from anomaly.jobs.calibration import use_calibration
from anomaly.jobs.run import build, run_job, test_results
from anomaly.model.weights import load_weights, sha256_of


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    datamodule, module, trainer = build(cfg)
    load_weights(module.net, cfg.weights, cfg.tau, cfg.task.name)
    use_calibration(trainer, cfg, cfg.weights, cfg.calibration)
    trainer.test(module, datamodule=datamodule)
    return test_results(trainer) | {"weights_sha256": sha256_of(cfg.weights)}  # which file exactly was scored


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run_job(cfg, evaluate)


if __name__ == "__main__":
    main()
