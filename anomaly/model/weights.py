"""Weights for the network from a file (one of the authors' ``.caffemodel`` files or a ``train.py`` checkpoint),
and the calibration from normal video that travels with them.

Checkpoints are read with ``torch.load(weights_only=True)``: a pickle that asks to run code is refused, not
run. Every entry point loads weights through :func:`load_weights` (``eval.py``) or checks a checkpoint with
:func:`check_checkpoint` before resuming from it (``train.py ckpt_path=``).

Example:
    >>> net = EncoderForecaster()
    >>> load_weights(net, "ped2_aug2.caffemodel", tau=5, task="prediction")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from anomaly.atomic import atomic_path, check_writable, write_atomic
from anomaly.errors import ConfigError, MissingDataError, WeightsError
from anomaly.model.caffe import load_caffemodel
from anomaly.model.convlstm import EncoderForecaster
from anomaly.protocol.calibration import Calibration

NET_PREFIX = "net."  # the network's keys in a LightningModule's state_dict


def _not_a_file(path: Path) -> str:
    return "a folder, not a file" if path.is_dir() else "no such file"


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a ``train.py`` checkpoint, unpickled safely (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: {_not_a_file(path)} (give a .ckpt of train.py or a .caffemodel)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path}: refused: this file holds Python objects other than weights, which could run code when "
            f"loaded ({str(err).splitlines()[0]}); only load checkpoints written by train.py"
        ) from None
    except Exception as err:  # torch raises several types for a file that is not a checkpoint at all
        why = "empty or cut short" if isinstance(err, EOFError) else f"{type(err).__name__}: {err}"
        raise WeightsError(f"{path}: not a checkpoint of train.py nor a .caffemodel ({why})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise WeightsError(f"{path}: not a checkpoint of train.py (no 'state_dict' in it)")
    return checkpoint


def check_checkpoint(path: str | os.PathLike, tau: int, task: str) -> dict[str, Any]:
    """A checkpoint of this network, trained with this ``tau`` and ``task``; its contents.

    Raises:
        MissingDataError: no such file.
        WeightsError: unsafe to unpickle, not a checkpoint of this network, or of another tau/task.
    """
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    trained = (hparams.get("tau"), hparams.get("task"))
    if trained != (tau, task):
        raise WeightsError(
            f"{path} was trained with tau={trained[0]} task={trained[1]}, but this run has tau={tau} task={task}; "
            f"use tau={trained[0]} task={trained[1]} with this checkpoint, or another checkpoint"
        )
    state = {k[len(NET_PREFIX) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(NET_PREFIX)}
    expected = EncoderForecaster().state_dict()
    if state.keys() != expected.keys():
        missing = sorted(expected.keys() - state.keys())[:3]
        raise WeightsError(f"{path}: not weights of this network (missing {missing}); a checkpoint of another model?")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise WeightsError(f"{path}: {key} has shape {shape}, expected {tuple(expected[key].shape)}")
    checkpoint["net_state_dict"] = state
    return checkpoint


def load_weights(net: EncoderForecaster, path: str | os.PathLike, tau: int, task: str) -> None:
    """Copy the weights of ``path`` (``.caffemodel`` or ``.ckpt``) into ``net``, checking that they fit.

    Raises:
        MissingDataError: no such file.
        WeightsError: not weights of this network, of another tau/task, unsafe to unpickle, or not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"weights={path}: {_not_a_file(path)} (give a .caffemodel or a .ckpt of train.py)")
    if path.suffix == ".caffemodel":
        load_caffemodel(net, path)
    else:
        net.load_state_dict(check_checkpoint(path, tau, task)["net_state_dict"])
    bad = [name for name, value in net.state_dict().items() if not torch.isfinite(value).all()]
    if bad:
        raise WeightsError(f"{path}: weights with NaN or inf values in {bad[:3]}; these weights cannot score anything")


# --- the calibration that travels with the weights -----------------------------------------------------

CALIBRATION_KEY = "calibration"  # in a train.py checkpoint
SIDECAR_SUFFIX = ".calibration.json"  # beside a .caffemodel (or any weights file): <weights>.calibration.json


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(weights: str | os.PathLike) -> Path:
    return Path(f"{weights}{SIDECAR_SUFFIX}")


def save_calibration(weights: str | os.PathLike, calibration: Calibration, out: str | None = None) -> Path:
    """Store ``calibration`` with its weights: inside a ``.ckpt`` (rewritten atomically), else in a sidecar
    JSON file beside the weights (or at ``out``) that records the weights' SHA-256. Returns where it went."""
    target = calibration_target(weights, out)
    with _writing_calibration(target):
        if target == Path(weights):
            checkpoint = read_checkpoint(weights)
            checkpoint[CALIBRATION_KEY] = calibration.to_dict()
            with atomic_path(target) as tmp:
                torch.save(checkpoint, tmp)
        else:
            data = calibration.to_dict() | {"weights_sha256": sha256_of(weights), "weights": str(weights)}
            write_atomic(target, json.dumps(data, indent=1))
    return target


def check_calibration_target(weights: str | os.PathLike, out: str | None = None) -> None:
    """Refuse now, before any scoring, a calibration that :func:`save_calibration` could not write."""
    target = calibration_target(weights, out)
    with _writing_calibration(target):
        check_writable(target)


def calibration_target(weights: str | os.PathLike, out: str | None = None) -> Path:
    """Where the calibration of ``weights`` goes: ``out``, else the ``.ckpt`` itself, else the sidecar file."""
    if out is not None:
        if Path(out).resolve() == Path(weights).resolve():
            raise ConfigError(f"out={out} is the weights file itself: choose another file for the calibration")
        return Path(out)
    return Path(weights) if Path(weights).suffix == ".ckpt" else sidecar_path(weights)


@contextmanager
def _writing_calibration(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise ConfigError(
            f"cannot write the calibration to {target} ({err.strerror or err}); choose a writable file with "
            f"out=PATH, and give it to detect.py / eval.py as calibration=PATH"
        ) from None


def find_calibration(weights: str | os.PathLike, explicit: str | os.PathLike | None = None) -> tuple[Calibration, Path]:
    """The calibration of ``weights``: ``explicit`` if given, else inside the checkpoint, else the sidecar file.

    Raises:
        WeightsError: none found (the message says how to make one), or one made for other weights.
    """
    weights = Path(weights)
    if explicit is not None:
        return _read_sidecar(Path(explicit), weights), Path(explicit)
    if weights.suffix == ".ckpt":
        stored = read_checkpoint(weights).get(CALIBRATION_KEY)
        if stored is not None:
            return Calibration.from_dict(stored, f"{weights} (its calibration)"), weights
    sidecar = sidecar_path(weights)
    if sidecar.is_file():
        return _read_sidecar(sidecar, weights), sidecar
    raise WeightsError(
        f"{weights}: no calibration found (neither inside the checkpoint nor {sidecar.name} beside it). Make one from "
        f"normal video with `python calibrate.py dataset=NAME weights={weights}` (or give calibration=PATH)"
    )


def _read_sidecar(path: Path, weights: Path) -> Calibration:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"calibration={path}: cannot read it ({err})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"calibration={path}: not a calibration file")
    data.pop("weights", None)
    calibration = Calibration.from_dict(data, f"calibration={path}")
    if calibration.weights_sha256 is not None and calibration.weights_sha256 != sha256_of(weights):
        raise WeightsError(
            f"calibration={path} was made for other weights than {weights} (their SHA-256 differs); calibrate "
            f"these weights: python calibrate.py dataset=NAME weights={weights}"
        )
    return calibration
