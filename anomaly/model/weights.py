"""Weights for the network from a file: one of the authors' ``.caffemodel`` files or a ``train.py`` checkpoint.

Checkpoints are read with ``torch.load(weights_only=True)``: a pickle that asks to run code is refused, not
run. Every entry point loads weights through :func:`load_weights` (``eval.py``) or checks a checkpoint with
:func:`check_checkpoint` before resuming from it (``train.py ckpt_path=``).

Example:
    >>> net = EncoderForecaster()
    >>> load_weights(net, "ped2_aug2.caffemodel", tau=5, task="prediction")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from anomaly.errors import MissingDataError, WeightsError
from anomaly.model.caffe import load_caffemodel
from anomaly.model.convlstm import EncoderForecaster

NET_PREFIX = "net."  # the network's keys in a LightningModule's state_dict


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a ``train.py`` checkpoint, unpickled safely (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: no such checkpoint file (give a .ckpt of train.py or a .caffemodel)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path}: refused: this file holds Python objects other than weights, which could run code when "
            f"loaded ({str(err).splitlines()[0]}); only load checkpoints written by train.py"
        ) from None
    except Exception as err:  # torch raises several types for a file that is not a checkpoint at all
        raise WeightsError(f"{path}: not a checkpoint of train.py nor a .caffemodel ({err})") from None
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
        raise MissingDataError(f"weights={path}: no such file (give a .caffemodel or a .ckpt of train.py)")
    if path.suffix == ".caffemodel":
        load_caffemodel(net, path)
    else:
        net.load_state_dict(check_checkpoint(path, tau, task)["net_state_dict"])
    bad = [name for name, value in net.state_dict().items() if not torch.isfinite(value).all()]
    if bad:
        raise WeightsError(f"{path}: weights with NaN or inf values in {bad[:3]}; these weights cannot score anything")
