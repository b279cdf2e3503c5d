"""LightningDataModule for any dataset that a loader describes (``load() -> VideoDataset``).

Data flows one way: loader (file layout, ground truth) -> frame cache (``uint8`` 227x227, decoded once)
-> volumes -> batches. The validation split is taken from the TRAINING videos (never the test set): the
last ``ceil(val_fraction * n)`` training videos, or the last ``val_fraction`` of the frames where there
is a single training video (Subway), cut into volumes at the training strides, as the authors' held-out
file of training volumes (REFERENCE.md section 3a).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Sampler

from anomaly.data.cache import cached_frames
from anomaly.data.datasets.folder import videos_in
from anomaly.data.video import Video, VideoDataset
from anomaly.data.volumes import TestWindows, TrainingVolumes, check_strides
from anomaly.errors import ConfigError, DataError
from anomaly.model.convlstm import FRAME_SIZE
from anomaly.protocol.task import window_length


class EpochShuffle(Sampler[int]):
    """A random order that depends only on (seed, epoch), so a run resumed mid-epoch sees the same order
    (``shuffle=False``: the volumes in the order they were cut, every epoch).

    ``resume(epoch, skip)`` makes the next pass over ``epoch`` start after its first ``skip`` items.
    """

    def __init__(self, size: int, seed: int, shuffle: bool) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0
        self._skip: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at the start of every epoch
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch, self._skip = epoch, (epoch, skip)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist() if self.shuffle else list(range(self.size))
        skip = self._skip[1] if self._skip and self._skip[0] == self.epoch else 0
        self._skip = None
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.size


class ResumableLoader(DataLoader):
    """A training DataLoader that Lightning checkpoints (it has ``state_dict``): position in the epoch."""

    def __init__(self, *args: Any, progress: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self.progress()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(state["epoch"], state["batches"] * self.batch_size)


class VideoDataModule(pl.LightningDataModule):
    """Training volumes (temporal strides), held-out volumes and test windows of one dataset.

    Every argument comes from ``conf/datamodule``. The dataset is described once per process (``load``);
    frames are decoded once into the cache, and only those of the videos a stage needs: ``eval.py`` never
    touches the training videos.

    Args:
        load: returns the dataset's videos (a Hydra partial of a loader such as ``load_ucsd``).
        tau, task: set the volume length (``2*tau`` for prediction, ``tau`` for reconstruction).
        batch_size, test_batch_size: training batch (the authors: 8 for tau=2, 4 for tau=5, 2 for tau=8)
            and the batch of held-out volumes and test windows.
        strides: temporal strides of training (and held-out) volumes (the paper: 1, 2, 3).
        drop_last: drop the last partial training batch (every batch the same shape, as CUDA graphs need).
        shuffle: a new random order of the training volumes every epoch; False keeps the order they are cut in
            (video by video, stride by stride), as a data layer reading volume files in order would.
        val_fraction: share of the training videos held out for the held-out loss (0: none).
        num_workers: DataLoader worker processes.
        cache_dir: where decoded frames are cached (None: decode into memory every run).
        seed: the training order depends only on it and the epoch.
    """

    def __init__(
        self,
        load: Callable[[], VideoDataset],
        tau: int,
        task: str,
        batch_size: int,
        test_batch_size: int,
        strides: Sequence[int],
        drop_last: bool,
        shuffle: bool,
        val_fraction: float,
        num_workers: int,
        cache_dir: str | None,
        seed: int,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("datamodule.test_batch_size", test_batch_size)):
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"{name}={value}: must be a whole number >= 1")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"datamodule.val_fraction={val_fraction}: must be in [0, 1)")
        if not (isinstance(num_workers, int) and num_workers >= 0):
            raise ConfigError(f"datamodule.num_workers={num_workers}: must be a whole number >= 0")
        self.load, self.tau, self.task = load, tau, task
        self.length = window_length(tau, task)
        self.batch_size, self.test_batch_size = batch_size, test_batch_size
        self.strides, self.shuffle, self.val_fraction = check_strides(strides), shuffle, val_fraction
        self.drop_last = drop_last
        self.num_workers, self.cache_dir, self.seed = num_workers, cache_dir, seed
        self._dataset: VideoDataset | None = None
        self._test_frames: list[np.ndarray] | None = None

    @property
    def dataset(self) -> VideoDataset:
        """The dataset's videos and labels, described once per process."""
        if self._dataset is None:
            self._dataset = self.load()
        return self._dataset

    def prepare_data(self) -> None:
        """Decode into the cache (on one process, with a progress bar) the videos this stage needs."""
        fitting = self.trainer is None or self.trainer.state.fn == TrainerFn.FITTING
        videos = [*self.dataset.train, *self.dataset.test] if fitting else self.dataset.test
        cached_frames(videos, FRAME_SIZE, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and not hasattr(self, "train_frames"):
            train = cached_frames(self.dataset.train, FRAME_SIZE, self.cache_dir)
            self._check_lengths(self.dataset.train, train, "training")
            self.train_frames, self.val_frames = self._split(train)

    @property
    def test_frames(self) -> list[np.ndarray]:
        if self._test_frames is None:
            self._test_frames = cached_frames(self.dataset.test, FRAME_SIZE, self.cache_dir)
            self._check_lengths(self.dataset.test, self._test_frames, "test")
        return self._test_frames

    def _check_lengths(self, videos: list[Video], frames: list[np.ndarray], split: str) -> None:
        for video, array in zip(videos, frames, strict=True):
            if len(array) < self.length:
                raise DataError(
                    f"{video.source}: {split} video {video.name!r} has {len(array)} frames, fewer than one "
                    f"volume of {self.length} frames (tau={self.tau}, task={self.task}); use a smaller tau "
                    f"or remove the video"
                )

    def _split(self, frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        if self.val_fraction == 0:
            return frames, []
        if len(frames) > 1:
            held = min(len(frames) - 1, math.ceil(self.val_fraction * len(frames)))
            return frames[:-held], frames[-held:]
        cut = len(frames[0]) - max(self.length, round(self.val_fraction * len(frames[0])))
        if cut < self.length:
            raise DataError(
                "the single training video is too short to hold out a validation part; set datamodule.val_fraction=0"
            )
        return [frames[0][:cut]], [frames[0][cut:]]

    def normal_dataloader(self, normal: str, folder: str | None = None) -> DataLoader:
        """Stride-1 windows of normal video, for calibration: ``train`` (all training videos), ``heldout`` (the
        held-out part of them) or ``folder`` (the user's own normal clips in ``folder``)."""
        if normal == "folder":
            if folder is None:
                raise ConfigError("normal=folder needs normal_dir=PATH: a folder of normal videos or frame folders")
            videos = videos_in(Path(folder), "normal")
            frames = cached_frames(videos, FRAME_SIZE, self.cache_dir)
            self._check_lengths(videos, frames, "normal")
        elif normal in ("train", "heldout"):
            videos = self.dataset.train
            frames = cached_frames(videos, FRAME_SIZE, self.cache_dir)
            self._check_lengths(videos, frames, "normal")
            if normal == "heldout":
                frames = self._split(frames)[1]
                if not frames:
                    raise ConfigError("normal=heldout, but datamodule.val_fraction=0 holds out nothing: normal=train")
        else:
            raise ConfigError(f"normal={normal!r}: expected train, heldout or folder")
        windows = TestWindows(frames, self.length)
        return DataLoader(windows, batch_size=self.test_batch_size, num_workers=self.num_workers)

    @property
    def test_videos(self) -> list[Video]:
        return self.dataset.test

    def train_dataloader(self) -> DataLoader:
        volumes = TrainingVolumes(self.train_frames, self.length, self.strides)
        return ResumableLoader(
            volumes,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(volumes), self.seed, self.shuffle),
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            progress=lambda: self.trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_frames:
            return []
        volumes = TrainingVolumes(self.val_frames, self.length, self.strides)
        return DataLoader(volumes, batch_size=self.test_batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        labels = [video.labels for video in self.dataset.test]
        windows = TestWindows(self.test_frames, self.length, labels)
        return DataLoader(windows, batch_size=self.test_batch_size, num_workers=self.num_workers)
