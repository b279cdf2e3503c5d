"""Score a trained model on a dataset's test videos with the paper's protocol.

``python eval.py dataset=ped2 weights=PATH`` where PATH is one of the authors' ``.caffemodel`` files or a
Lightning checkpoint of ``train.py``. Prints AUC, EER, scored frames and frames/s; writes ``results.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from anomaly.data.frames import MissingDataError
from anomaly.model.caffe import load_caffemodel
from anomaly.run import build, print_metrics, run_job, test_results


def load_weights(module: torch.nn.Module, path: Path, tau: int, task: str) -> None:
    if not path.is_file():
        raise MissingDataError(f"weights={path}: no such file (give a .caffemodel or a .ckpt of train.py)")
    if path.suffix == ".caffemodel":
        load_caffemodel(module.net, path)
        return
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state, hparams = checkpoint["state_dict"], checkpoint.get("hyper_parameters", {})
    except Exception as err:
        raise ValueError(f"weights={path}: not a .caffemodel nor a Lightning checkpoint ({err})") from None
    trained = (hparams.get("tau", tau), hparams.get("task", task))
    if trained != (tau, task):
        raise ValueError(
            f"weights={path} was trained with tau={trained[0]} task={trained[1]}; "
            f"evaluate it with tau={trained[0]} task={trained[1]}"
        )
    module.load_state_dict(state)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    datamodule, module, trainer = build(cfg)
    load_weights(module, Path(cfg.weights), cfg.tau, cfg.task.name)
    trainer.test(module, datamodule=datamodule)
    results = test_results(module, datamodule)
    print_metrics(results)
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run_job(cfg, evaluate)


if __name__ == "__main__":
    main()
