"""The two tasks of the paper: what a volume holds and what the network is asked to output.

- ``prediction``: a volume of ``2*tau`` frames; the first ``tau`` are the input, the next ``tau`` the target.
- ``reconstruction``: a volume of ``tau`` frames; the target is the input in reverse order.
"""

from __future__ import annotations

from torch import Tensor

from anomaly.errors import ConfigError

TASKS = ("prediction", "reconstruction")


def check_task(task: str, tau: int) -> None:
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is not one of {TASKS}")
    if not isinstance(tau, int) or tau < 1:
        raise ConfigError(f"tau={tau!r}: tau must be a positive integer (the paper uses 2, 5 or 8)")


def window_length(tau: int, task: str) -> int:
    """Frames in one volume: ``2*tau`` for prediction, ``tau`` for reconstruction."""
    check_task(task, tau)
    return 2 * tau if task == "prediction" else tau


def split_volume(volume: Tensor, tau: int, task: str) -> tuple[Tensor, Tensor]:
    """(input, target) of a batch of volumes (B, window_length, 1, H, W)."""
    if task == "prediction":
        return volume[:, :tau], volume[:, tau : 2 * tau]
    return volume, volume.flip(1)
