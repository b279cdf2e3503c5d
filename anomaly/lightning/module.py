"""LightningModule: the authors' training recipe and the paper's test pass around :class:`EncoderForecaster`.

- Loss (Eq. 1): squared error summed over the output volume, divided by ``2 * N * tau``.
- Adam (lr 1e-4, betas 0.9/0.999) with coupled L2 weight decay 5e-4 (Caffe adds the decay to the gradient,
  as ``torch.optim.Adam(weight_decay=...)`` does). As in the authors' training files, conv/deconv biases
  are not decayed and learn at ``bias_lr_mult`` (2) times the rate; everything else at the rate, decayed.
- Test: every stride-1 window of every test video gives one prediction error (Eq. 2) for the window's last
  frame, kept in a :class:`TestErrors` metric (gathered across processes). Scoring it with the protocol,
  timing, pictures and results are the work of callbacks (``anomaly.lightning.callbacks``).

Volumes arrive as ``uint8`` (on the accelerator already) and become [0, 1] floats here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from anomaly.errors import ConfigError
from anomaly.model.convlstm import FRAME_SIZE, EncoderForecaster, compile_options
from anomaly.protocol.metric import TestErrors
from anomaly.protocol.scoring import Rect, check_rects, error_mask, frame_errors, prediction_error, psnr, scored_pixels
from anomaly.protocol.task import check_task, split_volume

log = logging.getLogger("anomaly")
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def unit_scale(frames: Tensor) -> Tensor:
    """``uint8`` frames (0-255) as float32 in [0, 1]; float frames as they are."""
    return frames.float() / 255 if frames.dtype == torch.uint8 else frames


class AnomalyModule(pl.LightningModule):
    """The network, the recipe and the test pass. Every argument comes from ``conf/model``.

    Args:
        tau, task: frames per input/output and ``prediction`` or ``reconstruction``.
        init: ``authors`` (xavier conv/deconv weights, their training files) or ``paper`` (He).
        lr, betas, weight_decay: Adam and its coupled L2 decay.
        bias_lr_mult: learning-rate multiplier of the conv/deconv biases (the authors: 2).
        mask: error-map rectangles to ignore (Subway's time stamp).
        compile, compile_mode: ``torch.compile`` Eq. 1 and the test errors, each as one graph with the network
            (same maths; faster after a compile of about a minute), in this mode (``reduce-overhead``: CUDA graphs
            on a GPU, with ``datamodule.drop_last=true`` for one training batch shape; scored batches are padded
            to one size, see :meth:`window_errors`).
    """

    def __init__(
        self,
        tau: int,
        task: str,
        init: str,
        lr: float,
        betas: Sequence[float],
        weight_decay: float,
        bias_lr_mult: float,
        mask: Sequence[Rect],
        compile: bool,
        compile_mode: str | None,
    ) -> None:
        super().__init__()
        check_task(task, tau)
        for name, value in (("lr", lr), ("weight_decay", weight_decay), ("bias_lr_mult", bias_lr_mult)):
            if not value >= 0:
                raise ConfigError(f"model.{name}={value}: must be >= 0")
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(
                f"model.compile_mode={compile_mode!r}: must be one of {', '.join(map(str, COMPILE_MODES))}"
            )
        if compile_mode is not None and not compile:
            raise ConfigError(f"model.compile_mode={compile_mode}: has effect only with model.compile=true; set both")
        # Plain Python types (not Hydra's ListConfig), so checkpoints load with torch.load(weights_only=True).
        betas = [float(b) for b in betas]
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ConfigError(f"model.betas={betas}: Adam's betas are two numbers in [0, 1) (the recipe: [0.9, 0.999])")
        mask = check_rects(mask, FRAME_SIZE)
        self.save_hyperparameters()
        self.net = EncoderForecaster(init)
        rects = [tuple(rect) for rect in mask]
        self.register_buffer("mask", error_mask(FRAME_SIZE, rects), persistent=False)
        self.test_errors = TestErrors()
        # one input window: Lightning's model summary then shows its sizes and FLOPs (else "0 Total Flops")
        self.example_input_array = torch.zeros(1, tau, 1, FRAME_SIZE, FRAME_SIZE)
        self._compiled: set[str] = set()
        self._graphs: dict[str, Callable] = {}  # model.compile: the compiled loss and test errors, made at first use
        self._scored_batch = 0  # the largest scored batch so far (compiled: every batch gets this size)
        self._compile_started = 0.0

    def forward(self, frames: Tensor) -> Tensor:
        return self.net(frames, tau_out=self.hparams.tau)

    def split(self, volume: Tensor) -> tuple[Tensor, Tensor]:
        """(input, target) in [0, 1] of a batch of ``uint8`` (or float) volumes.

        Each part is converted on its own: compiled, each conversion then fuses into the kernel that reads it, and no
        float copy of the whole volume is written out."""
        inputs, target = split_volume(volume, self.hparams.tau, self.hparams.task)
        return unit_scale(inputs), unit_scale(target)

    def loss(self, volume: Tensor) -> Tensor:
        """Eq. 1: the squared error over the output volumes / (2 N tau)."""
        return self._maybe_compiled(self._loss, volume)

    def _maybe_compiled(self, function: Callable, volume: Tensor) -> Any:
        """``function(volume)``; under ``model.compile``, compiled at its first call for the volume's device.

        Compiled, the loss and the test errors are each one graph, network included: the frames' conversion to
        float and the loss or the frame norms fuse into its first and last kernels, and no eager op runs between
        them (compiled fp32 training 1.0-1.5 % faster than with the network compiled alone; docs/benchmarks.md).
        """
        if not self.hparams.compile:
            return function(volume)
        name = function.__name__
        if name not in self._graphs:
            options = compile_options(self.hparams.compile_mode, volume.device)
            self._graphs[name] = torch.compile(function, options=options)
        return self._graphs[name](volume)

    def _loss(self, volume: Tensor) -> Tensor:
        inputs, target = self.split(volume)
        output = self(inputs)
        return F.mse_loss(output.float(), target, reduction="sum") / (2 * volume.shape[0] * self.hparams.tau)

    def _errors(self, volume: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(last output frame, its target as the batch holds it, frame norms) of a batch of windows. Compiled, the
        targets are converted to float inside the kernel of the frame norms, never written out."""
        inputs, target = split_volume(volume, self.hparams.tau, self.hparams.task)
        output = self(unit_scale(inputs)).float()
        return output[:, -1], target[:, -1], frame_errors(output, unit_scale(target), self.mask)

    def window_errors(self, volume: Tensor, batch: int = 0) -> dict[str, Tensor]:
        """Eq. 2 error and PSNR of each test window, with its last output frame and that frame's target, (B, C, H, W)
        each (for pictures and error maps).

        Under ``model.compile`` a batch shorter than ``batch`` or than the largest scored so far (the last of a
        test set, the first of a stream) is padded with copies of its last window, so that one compiled graph
        (one captured CUDA graph under ``reduce-overhead``) serves every batch; the copies' outputs are dropped
        (windows are scored independently: the same numbers)."""
        windows = volume.shape[0]
        if self.hparams.compile:
            self._scored_batch = max(self._scored_batch, windows, batch)
            missing = self._scored_batch - windows
            volume = torch.cat([volume, volume[-1:].expand(missing, *volume.shape[1:])]) if missing else volume
        output, target, norms = (value[:windows] for value in self._maybe_compiled(self._errors, volume))
        return {
            "errors": prediction_error(norms),
            "psnr": psnr(norms, scored_pixels(output[0], self.mask)),
            "last_output": output,
            "last_target": unit_scale(target),
        }

    # --- the compile time, printed: the first step of each kind compiles (when model.compile=true) -------

    def _first_step(self, kind: str, start: bool) -> None:
        if not self.hparams.compile or kind in self._compiled:
            return
        if start:
            self._compile_started = time.perf_counter()
        else:
            self._compiled.add(kind)
            log.info("torch.compile: first %s step %.1f s (the compile included)", kind,
                     time.perf_counter() - self._compile_started)  # fmt: skip

    def on_train_batch_start(self, batch: Tensor, batch_idx: int) -> None:
        self._first_step("training", start=True)

    def on_train_batch_end(self, outputs: Any, batch: Tensor, batch_idx: int) -> None:
        self._first_step("training", start=False)

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._first_step("test", start=True)

    def on_test_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._first_step("test", start=False)

    def training_step(self, volume: Tensor, batch_idx: int) -> Tensor:
        loss = self.loss(volume)
        self.log("train/loss", loss, prog_bar=True, batch_size=volume.shape[0])
        return loss

    def validation_step(self, volume: Tensor, batch_idx: int) -> Tensor:
        loss = self.loss(volume)
        self.log("val/loss", loss, prog_bar=True, batch_size=volume.shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The authors' multipliers: conv/deconv biases lr_mult 2, decay_mult 0; all else 1 and 1 (the ConvLSTM
        # biases live inside the cells and are decayed). decode_lstm1's zero-input weights are frozen.
        biases = {id(layer.bias) for layer in self.net.layers}
        trained = [p for p in self.net.parameters() if p.requires_grad]
        lr, decay, bias_lr = self.hparams.lr, self.hparams.weight_decay, self.hparams.lr * self.hparams.bias_lr_mult
        groups = [
            {"params": [p for p in trained if id(p) not in biases], "lr": lr, "weight_decay": decay},
            {"params": [p for p in trained if id(p) in biases], "lr": bias_lr, "weight_decay": 0.0},
        ]
        # fused: one kernel per step for all parameters instead of about ten per parameter (same update).
        return torch.optim.Adam(groups, lr=lr, betas=tuple(self.hparams.betas), fused=True)

    # --- test: the paper's protocol ---------------------------------------------------------------------

    def predict_step(self, batch: tuple[Tensor, Tensor, Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The Eq. 2 error of each window (calibration on normal video uses it)."""
        volume, video, frame, _ = batch
        return {"video": video.cpu(), "frame": frame.cpu(), "errors": self.window_errors(volume)["errors"].cpu()}

    def on_test_epoch_start(self) -> None:
        self.test_errors.reset()

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        volume, video, frame, label = batch
        out = self.window_errors(volume)
        self.test_errors.update(video, frame, out["errors"], out["psnr"], label)
        return out | {"video": video, "frame": frame}
