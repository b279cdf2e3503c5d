"""Callback that turns a finished test into pictures: saved as PNG in the run folder and logged to W&B."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from anomaly.atomic import atomic_path
from anomaly.plots import error_panel_figure, regularity_figure, roc_figure
from anomaly.scoring import roc_curve


class TestReport(pl.Callback):
    """Regularity curves (paper Fig. 2), ROC curve and a target/prediction/error panel (paper Fig. 3)."""

    def __init__(self, output_dir: str) -> None:
        self.plots = Path(output_dir) / "plots"

    @pl.utilities.rank_zero_only
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        results = pl_module.test_results
        if not results:
            return
        names = [v.name for v in trainer.datamodule.test_videos] if trainer.datamodule else None
        figures = {
            "regularity": regularity_figure(
                [
                    (
                        names[r.index] if names else str(r.index),
                        r.frames.numpy(),
                        r.regularity.numpy(),
                        r.labels.numpy(),
                    )
                    for r in results
                ]
            )
        }
        metrics = pl_module.test_metrics
        if "auc" in metrics:
            labelled = [r for r in results if (r.labels >= 0).all()]
            fpr, tpr = roc_curve([r.regularity for r in labelled], [r.labels for r in labelled])
            figures["roc"] = roc_figure(fpr.numpy(), tpr.numpy(), metrics["auc"], metrics["eer"])
        example = pl_module.example
        if example:
            video = names[int(example["video"])] if names else str(int(example["video"]))
            title = f"highest prediction error: {video}, frame {int(example['frame']) + 1}"
            figures["error_map"] = error_panel_figure(example["target"].numpy(), example["output"].numpy(), title)
        self.plots.mkdir(parents=True, exist_ok=True)
        if pl_module.maps:
            self._save_maps(pl_module.maps, names)
        for name, figure in figures.items():
            path = self.plots / f"{name}.png"
            with atomic_path(path) as tmp:
                figure.savefig(tmp, dpi=110)
            plt.close(figure)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key=f"test/{name}", images=[str(path)])

    def _save_maps(self, maps: dict[int, list[tuple[int, torch.Tensor]]], names: list[str] | None) -> None:
        """``plots/maps/<video>.npz``: ``frames`` (0-based scored frames) and ``maps`` (T, 56, 56) float16."""
        folder = self.plots / "maps"
        folder.mkdir(parents=True, exist_ok=True)
        for index, entries in maps.items():
            entries.sort(key=lambda entry: entry[0])
            name = names[index] if names else str(index)
            frames, stacked = np.array([f for f, _ in entries]), torch.stack([m for _, m in entries]).numpy()
            with atomic_path(folder / f"{name}.npz") as tmp:
                np.savez_compressed(tmp, frames=frames, maps=stacked)
