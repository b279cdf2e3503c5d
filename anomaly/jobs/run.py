"""One job of ``train.py``, ``eval.py``, ``calibrate.py`` or ``detect.py``: run it, write ``results.json``.

Every job writes ``results.json`` into its own run folder, whatever happens: ``status`` is ``ok``,
``missing_data`` (the dataset is not on disk) or ``failed`` (with the error). In a multirun a failed job
does not stop the others; :class:`SweepSummary` lists every job at the end and exits non-zero if any
failed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from anomaly.data.datamodule import VideoDataModule
from anomaly.errors import AnomalyError, ConfigError, MissingDataError
from anomaly.hardware import device_name, emulated_bf16
from anomaly.jobs.tracking import wandb_mode
from anomaly.lightning.callbacks import TestScoring, find_callback
from anomaly.lightning.module import AnomalyModule
from anomaly.model.convlstm import count_parameters
from anomaly.model.weights import read_checkpoint
from anomaly.reporting.results import write_results

log = logging.getLogger("anomaly")


def _sweep_group() -> str:
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        return Path(hydra.sweep.dir).name
    return f"{hydra.job.name}-single-runs"


OmegaConf.register_new_resolver("cwd", os.getcwd, use_cache=True, replace=True)
OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True, replace=True)
OmegaConf.register_new_resolver("sweep_group", _sweep_group, use_cache=True, replace=True)


SEEDS = (0, 2**32 - 1)  # what numpy accepts, and so seed_everything


def build(cfg: DictConfig) -> tuple[VideoDataModule, AnomalyModule, pl.Trainer]:
    if cfg.seed is not None and not (isinstance(cfg.seed, int) and SEEDS[0] <= cfg.seed <= SEEDS[1]):
        raise ConfigError(f"seed={cfg.seed}: must be a whole number from {SEEDS[0]} to {SEEDS[1]}")
    pl.seed_everything(cfg.seed, workers=True)
    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels (GPU only)
    datamodule = instantiate(cfg.datamodule)
    module = instantiate(cfg.model)
    loggers = list(instantiate(cfg.get("logger") or {}).values())
    if any(isinstance(lg, pl.loggers.WandbLogger) for lg in loggers):
        os.environ["WANDB_MODE"] = wandb_mode()
        os.environ.setdefault("WANDB_SILENT", "true")
    callbacks = list(instantiate(cfg.get("callbacks") or {}).values())
    try:
        trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    except InstantiationException as err:  # Lightning refused a trainer.* setting (precision, accelerator, ...)
        raise ConfigError(f"a trainer setting: {err.__cause__ or err} (see conf/trainer)") from err
    if "bf16" in str(trainer.precision) and (why := emulated_bf16(trainer.strategy.root_device)):
        log.warning("trainer.precision=%s: %s", trainer.precision, why)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)
    return datamodule, module, trainer


def test_results(trainer: pl.Trainer) -> dict[str, Any]:
    """Metrics and per-video scores of the last ``trainer.test``, for ``results.json``; printed too."""
    scoring = find_callback(trainer, TestScoring)
    evaluation = scoring.evaluation
    names = [v.name for v in trainer.datamodule.test_videos]
    alarms = evaluation.alarms or [None] * len(evaluation.videos)
    results = {
        "metrics": evaluation.metrics,
        "parameters": count_parameters(trainer.lightning_module.net),
        "device": device_name(),
        "videos": [
            {
                "name": names[video.index],
                "frames": video.frames.tolist(),  # 0-based indices of the scored frames
                "errors": video.errors.tolist(),
                "regularity": regularity.tolist(),
                "labels": video.labels.tolist(),  # 1 abnormal, 0 normal, -1 unknown
            }
            | ({} if alarm is None else {"alarm": alarm.tolist()})  # the calibrated protocol's 0/1 alarms
            for video, regularity, alarm in zip(evaluation.videos, evaluation.regularity, alarms, strict=True)
        ],
    }
    if evaluation.gt_events is not None:  # each ground-truth event: caught or not, and how many frames late
        labelled = [names[v.index] for v in evaluation.videos if v.labelled]
        results["gt_events"] = [e | {"video": labelled[e["video"]]} for e in evaluation.gt_events]
        results["calibration"] = {"source": scoring.calibration.source, "windows": scoring.calibration.windows}
    print_metrics(results)
    return results


TEST_CHECKPOINTS = ("last", "best")


def check_before_training(cfg: DictConfig, trainer: pl.Trainer) -> None:
    """What ``train.py`` uses only after training, checked before it: found wrong then, it would end a run of hours
    with nothing tested (``test_checkpoint``; the calibrated protocol without a calibration)."""
    if cfg.test and cfg.scoring.normalization == "calibrated" and not (cfg.calibrate and trainer.world_size == 1):
        raise ConfigError(
            "scoring.normalization=calibrated tests against the calibration that train.py makes after training, "
            "which needs calibrate=true and one process (trainer.devices=1); or test later with eval.py"
        )
    if cfg.test_checkpoint not in TEST_CHECKPOINTS:
        raise ConfigError(f"test_checkpoint={cfg.test_checkpoint!r}: expected 'last' (the authors' choice) or 'best'")
    if cfg.test_checkpoint == "best" and not cfg.datamodule.val_fraction:
        raise ConfigError(
            "test_checkpoint=best needs held-out data to choose by (datamodule.val_fraction > 0); "
            "or use test_checkpoint=last"
        )


def tested_checkpoint(trainer: pl.Trainer, which: str) -> dict[str, Any]:
    """Which checkpoint the test after training uses (``test_checkpoint``, checked by :func:`check_before_training`),
    its path, and why."""
    checkpoints = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    best = next((c.best_model_path or None for c in checkpoints if c.monitor), None)
    latest = next((c for c in checkpoints if not c.monitor), None)
    last = latest.best_model_path or None if latest else None
    if latest is not None and last is None:  # resumed from a finished run: nothing trained, nothing saved yet
        last = str(Path(latest.dirpath) / "last.ckpt")
        trainer.save_checkpoint(last)
    if which == "last":
        why = "test_checkpoint=last: the model after the last epoch, as the authors tested theirs"
        return {"which": "last", "checkpoint": last, "iteration": _iteration(last), "best_checkpoint": best, "why": why}
    if best is None:  # which == "best" (check_before_training), but no held-out loss was ever computed
        raise ConfigError(
            "test_checkpoint=best, but no checkpoint was selected by held-out loss (no held-out volumes: too few "
            "training videos for datamodule.val_fraction?); use test_checkpoint=last"
        )
    why = "test_checkpoint=best: the checkpoint with the lowest held-out (validation) loss"
    return {"which": "best", "checkpoint": best, "iteration": _iteration(best), "last_checkpoint": last, "why": why}


def _iteration(checkpoint: str | None) -> int | None:
    """The training iterations (optimiser steps) behind ``checkpoint``: 0 for an untrained model."""
    return None if checkpoint is None else read_checkpoint(checkpoint)["global_step"]


def _user_error(err: BaseException) -> AnomalyError | None:
    """The error a user can fix from its message, also when Hydra's instantiate wrapped it.

    Lightning's own refusals of trainer settings and a required setting left out (``???``) count too.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, AnomalyError):
            return seen
        if isinstance(seen, MisconfigurationException):
            return ConfigError(f"a trainer setting: {seen} (see conf/trainer)")
        if isinstance(seen, MissingMandatoryValue):
            return ConfigError(f"{seen.full_key} is not set: give {seen.full_key}=VALUE on the command line")
        seen = seen.__cause__ or seen.__context__
    return None


ANY_KIND = frozenset({"trainer.devices"})  # Lightning's: a count, "auto", or a list of devices


def check_kinds(cfg: DictConfig) -> None:
    """Each setting whose value in ``conf/`` (with this job's choices of config groups) is true/false, a number or a
    list must be one here too: ``model.compile=maybe`` would otherwise count as true (any text does), and
    ``trainer.max_epochs=abc`` fail inside Lightning after the first epoch has begun. A number may be given for
    any number (``scoring.smoothing_sigma=1.5``), and null for a number (the code that reads it decides)."""
    hydra = HydraConfig.get()
    choices = [f"{group}={choice}" for group, choice in hydra.runtime.choices.items()
               if choice is not None and not group.startswith("hydra")]  # fmt: skip
    defaults = compose(config_name=hydra.job.config_name, overrides=choices)
    for key in _leaf_keys(OmegaConf.to_container(defaults, resolve=False)):
        default = OmegaConf.select(defaults, key, throw_on_resolution_failure=False)
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if key in ANY_KIND or default is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected true or false (the default is {str(default).lower()})")
        if _is_number(default) and not (value is None or _is_number(value)):
            raise ConfigError(f"{key}={value!r}: expected a number (the default is {default})")
        if isinstance(default, ListConfig) and not isinstance(value, ListConfig):
            raise ConfigError(f"{key}={value!r}: expected a list, like the default {OmegaConf.to_container(default)}")


def _leaf_keys(node: dict, prefix: str = "") -> Iterator[str]:
    for key, child in node.items():
        if isinstance(child, dict):
            yield from _leaf_keys(child, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_job(cfg: DictConfig, body: Callable[[DictConfig], dict[str, Any]]) -> dict[str, Any]:
    """Check the settings' kinds, run ``body`` and write ``results.json`` (status, metrics, config, wall time)
    whatever happens."""
    started = time.perf_counter()
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    results: dict[str, Any] = {"status": "ok", "kind": cfg.job, **_description(cfg)}
    try:
        check_kinds(cfg)
        results.update(body(cfg))
    except Exception as err:
        cause = _user_error(err)
        if isinstance(cause, MissingDataError):
            results.update(status="missing_data", error=str(cause))
            log.error("missing data: %s", cause)
        elif cause is not None:
            results.update(status="failed", error=f"{type(cause).__name__}: {cause}")
            log.error("%s", cause)
        else:  # an unexpected bug: keep the traceback for the report
            results.update(status="failed", error=f"{type(err).__name__}: {err}")
            log.error("unexpected error:\n%s", traceback.format_exc())
    finally:
        _finish_wandb()
    results["wall_time_s"] = time.perf_counter() - started
    if rank_zero_only.rank != 0:  # under DDP every process runs the job; one writes the results
        return results
    try:
        results["config"] = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # a config that cannot resolve is itself what failed; keep it unresolved
        results["config"] = OmegaConf.to_container(cfg, resolve=False)
    write_results(output_dir / "results.json", results)
    log.info("results: %s", output_dir / "results.json")
    if results["status"] != "ok" and HydraConfig.get().mode == RunMode.RUN:
        sys.exit(1)
    return results


def _description(cfg: DictConfig) -> dict[str, Any]:
    """What a job is about, for ``results.json`` and the report: data, method, weights, scoring protocol."""

    def get(key: str) -> Any:
        return OmegaConf.select(cfg, key, throw_on_missing=False)

    protocol = {key: get(f"scoring.{key}") for key in ("score", "smoothing_sigma", "auc", "normalization")}
    return {
        "dataset": get("dataset.name"),
        "task": get("task.name"),
        "tau": get("tau"),
        "seed": get("seed"),
        "group": get("group"),
        "weights": get("weights"),
        "protocol": protocol | {"mask": bool(get("dataset.mask"))} if get("scoring") is not None else None,
    }


def _finish_wandb() -> None:
    """Each job finishes its own W&B run, so that the next job of a sweep starts a new one."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


@rank_zero_only
def print_metrics(results: dict[str, Any]) -> None:
    metrics = results.get("metrics", {})
    if "auc" in metrics:
        print(f"AUC {100 * metrics['auc']:.2f} %   EER {100 * metrics['eer']:.2f} %   ", end="")
    frames, fps = int(metrics.get("frames", 0)), metrics.get("fps", 0)
    print(f"scored frames {frames}   {fps:.1f} frames/s on {results['device']}")
    if "op_tpr" in metrics:  # the calibrated protocol's operating point
        print(
            f"calibrated threshold: frame TPR {100 * metrics['op_tpr']:.1f} %   FPR {100 * metrics['op_fpr']:.1f} %   "
            f"false alarms {metrics['false_alarms_per_minute']:.2f}/min of normal video   events detected "
            f"{metrics['events_detected']}/{metrics['events_total']} (median delay "
            f"{metrics['median_delay_frames']:g} frames)"
        )


class SweepSummary(Callback):
    """At the end of a multirun: one line per job, and a non-zero exit if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        lines, failed = [], 0
        for path in sorted(
            sweep_dir.glob("*/results.json"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        ):
            result = json.loads(path.read_text())
            what = f"{result['dataset']} {result['task']} tau={result['tau']} seed={result['seed']}"
            if result["status"] == "ok" and "auc" in result.get("metrics", {}):
                status = f"AUC {100 * result['metrics']['auc']:.2f} EER {100 * result['metrics']['eer']:.2f}"
            else:
                first_line = (result.get("error") or "").strip().splitlines()[:1]
                status = ": ".join([result["status"], *first_line])
            failed += result["status"] == "failed"
            lines.append(f"  job {path.parent.name}: {what}: {status}")
        print(f"\nSweep {sweep_dir}: {len(lines)} job(s)\n" + "\n".join(lines))
        shown = sweep_dir.relative_to(Path.cwd()) if sweep_dir.is_relative_to(Path.cwd()) else sweep_dir
        print(f"Aggregate with: python -m anomaly.reporting {shown}")
        if failed:
            print(f"{failed} job(s) failed; see their results.json and logs.", file=sys.stderr)
            sys.exit(1)
