"""The network in each mode (eager / compiled, fp32 / bf16, CUDA graphs on a GPU): its speed, its FLOPs, and
both as fractions of the peak of its precision."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

import anomaly.jobs.run  # noqa: F401  (registers the config's resolvers)
from anomaly.bench.bounds import inductor_kernel_bytes
from anomaly.bench.timing import precision, random_volumes, timed_beside
from anomaly.lightning.module import AnomalyModule

CONF = Path(__file__).resolve().parents[2] / "conf"


@dataclass
class Mode:
    """One way of running the network, and what it measured (per training volume and per scored test frame)."""

    name: str
    precision: str  # fp32 | bf16
    compiled: bool
    compile_mode: str | None = None
    train_volumes_per_s: float = 0.0
    test_frames_per_s: float = 0.0
    train_gflops: float = 0.0
    test_gflops: float = 0.0
    train_peak_gflops: float = 0.0  # the peak of its precision, measured again beside its training runs
    test_peak_gflops: float = 0.0  # and beside its test runs
    train_fraction_of_peak: float = 0.0
    test_fraction_of_peak: float = 0.0
    compile_s: float = 0.0
    kernel_bytes_train: int | None = None  # compiled modes: inductor's kernels, per training step and test batch
    kernel_bytes_test: int | None = None
    bound_train_volumes_per_s: float | None = None  # the convolutions alone + those bytes at the memory bandwidth
    bound_test_frames_per_s: float | None = None
    bound_train_fraction_of_peak: float | None = None
    bound_test_fraction_of_peak: float | None = None

    def rate(self, flops: tuple[float, float]) -> None:
        """GFLOP/s from the FLOPs of one training volume and of one test window, and fractions of the peaks measured
        beside the training and the test runs."""
        self.train_gflops = self.train_volumes_per_s * flops[0] / 1e9
        self.test_gflops = self.test_frames_per_s * flops[1] / 1e9
        self.train_fraction_of_peak = self.train_gflops / self.train_peak_gflops
        self.test_fraction_of_peak = self.test_gflops / self.test_peak_gflops

    def bound(self, conv_seconds: tuple[float, float], batches: tuple[int, int], bandwidth: float,
              flops: tuple[float, float], peaks: tuple[float, float]) -> bool:  # fmt: skip
        """The compiled mode's bound: the convolutions alone (seconds per training step and test batch of
        ``batches``) plus its kernels' bytes at ``bandwidth`` GB/s, and its fractions of ``peaks`` (GFLOP/s: those
        measured beside the convolutions alone, in training and testing). False where inductor counted no
        bytes."""
        if None in (self.kernel_bytes_train, self.kernel_bytes_test):
            return False
        train_s = conv_seconds[0] + self.kernel_bytes_train / 1e9 / bandwidth
        test_s = conv_seconds[1] + self.kernel_bytes_test / 1e9 / bandwidth
        self.bound_train_volumes_per_s, self.bound_test_frames_per_s = batches[0] / train_s, batches[1] / test_s
        self.bound_train_fraction_of_peak = self.bound_train_volumes_per_s * flops[0] / 1e9 / peaks[0]
        self.bound_test_fraction_of_peak = self.bound_test_frames_per_s * flops[1] / 1e9 / peaks[1]
        return True


def modes_for(device: torch.device) -> list[Mode]:
    modes = [
        Mode("eager fp32", "fp32", False),
        Mode("compiled fp32", "fp32", True),
        Mode("eager bf16", "bf16", False),
        Mode("compiled bf16", "bf16", True),
    ]
    if device.type == "cuda":
        modes += [
            Mode("CUDA graphs fp32", "fp32", True, "reduce-overhead"),
            Mode("CUDA graphs bf16", "bf16", True, "reduce-overhead"),
        ]
    return modes


def build(tau: int, device: torch.device, compiled: bool = False, compile_mode: str | None = None) -> AnomalyModule:
    """The LightningModule of ``conf/`` (the recipe's defaults), on ``device``; ``compiled``: as
    ``model.compile=true`` (and ``model.compile_mode``) builds it."""
    overrides = [f"tau={tau}", "dataset=ped2", f"model.compile={compiled}"]
    if compile_mode is not None:
        overrides.append(f"model.compile_mode={compile_mode}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.model).to(device)


def count_flops(module: AnomalyModule, tau: int, device: torch.device) -> tuple[float, float]:
    """FLOPs of one training volume (forward + backward) and of one test window (forward): the model's own
    arithmetic (deconv3 as its transposed convolution, not the padded sub-pixel form the fast path runs)."""
    volume = random_volumes(1, tau, device)
    module.net.subpixel = False
    try:
        with FlopCounterMode(display=False) as train:
            module.loss(volume).backward()
        module.zero_grad(set_to_none=True)
        with torch.no_grad(), FlopCounterMode(display=False) as test:
            module.window_errors(volume)
    finally:
        module.net.subpixel = True
    return float(train.get_total_flops()), float(test.get_total_flops())


def training_step(module: AnomalyModule, volume: torch.Tensor, precision_name: str = "fp32") -> Callable[[], None]:
    """One training step of ``module`` on ``volume`` as the recipe trains (forward, backward, its Adam), in
    ``precision_name`` (``"fp32"`` or ``"bf16"``): call it to run it once."""
    optimizer = module.configure_optimizers()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision(precision_name, volume.device):
            loss = module.loss(volume)
        loss.backward()
        optimizer.step()

    return step


def measure(mode: Mode, tau: int, batch: int, test_batch: int, steps: int, device: torch.device,
            peak: Callable[[float], float]) -> Mode:  # fmt: skip
    """Training volumes/s (forward + backward + Adam) and test frames/s of ``mode``, each with the peak of its
    precision measured again beside it (``peak(seconds)``, sustained as long as its runs); for a compiled mode also
    its compile time and its kernels' bytes."""
    torch.manual_seed(0)
    module = build(tau, device, mode.compiled, mode.compile_mode)
    volume = random_volumes(batch, tau, device)
    windows = random_volumes(test_batch, tau, device)
    train_step = training_step(module, volume, mode.precision)

    @torch.no_grad()
    def test_step() -> None:
        with precision(mode.precision, device):
            module.window_errors(windows)

    counting = inductor_kernel_bytes if mode.compiled else contextlib.nullcontext
    started = time.perf_counter()
    with counting() as train:
        train_step()  # the first call compiles
    module.eval()
    with counting() as test:
        test_step()
    module.train()
    if mode.compiled:
        mode.compile_s = time.perf_counter() - started
        mode.kernel_bytes_train, mode.kernel_bytes_test = train["bytes"], test["bytes"]
    for _ in range(2):
        train_step()
    seconds, mode.train_peak_gflops = timed_beside(train_step, peak, steps, device)
    mode.train_volumes_per_s = batch / seconds
    module.eval()
    for _ in range(2):
        test_step()
    seconds, mode.test_peak_gflops = timed_beside(test_step, peak, steps, device)
    mode.test_frames_per_s = test_batch / seconds
    return mode
