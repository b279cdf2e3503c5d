"""Benchmark: how close to this machine's convolution peak the network trains and scores, in every mode.

``python -m anomaly.bench [--device cuda] [--steps 10] [--json PATH] [--ucsd ROOT]`` (``make bench``).

In one run it measures:

1. the peak: GFLOP/s of a 3x3 convolution of each of the model's gate shapes (the three fused ConvLSTM gate
   convolutions, ``cat(x, h) -> 4C``) at the benchmark's training batch, in fp32 and bf16, each in NCHW and
   channels-last (NHWC) memory; the fastest of the six is the peak of that precision;
2. for each mode (eager / ``torch.compile``; fp32 / bf16 autocast; on a GPU also CUDA graphs through
   ``mode="reduce-overhead"``): training volumes/s (forward + backward + Adam, the recipe's optimiser) and
   test frames/s (one scored frame per test window, no gradients), each after warm-up (compile included);
   every timing here (peak, modes, ceiling) is the best of three runs;
3. the FLOPs of one training volume and of one test window, counted by ``FlopCounterMode`` on the network
   (its own arithmetic: deconv3 as the transposed convolution), so that each mode's rate becomes GFLOP/s
   and a fraction of the peak of its precision;
4. the ceiling the convolutions set: every convolution call of a training step (forward + backward) and of
   a test batch, recorded as the network runs and timed on its own (in the faster memory layout); no mode can
   beat their sum, and the gap between it and a mode is the rest (gate arithmetic, copies, the optimiser,
   Python);
5. for the compiled modes, a tighter bound: the convolutions alone plus the memory traffic of the kernels that
   inductor generates for the rest (the gate arithmetic; inductor's own count of the bytes each kernel reads
   and writes, each buffer once) at this machine's memory bandwidth (a streaming add, measured in the same run).

Printed as a table; ``--json PATH`` writes ``{"device", "peak_gflops": {"fp32", "bf16"}, "flops", "modes":
[{"name", "precision", "compiled", "train_volumes_per_s", "test_frames_per_s", "train_fraction_of_peak",
"test_fraction_of_peak", "kernel_bytes_train", "bound_train_fraction_of_peak", ...}], "convolutions_alone":
{"fp32", "bf16"}, "memory_gb_per_s"}``. Only what was measured is
printed. With ``--ucsd ROOT`` it also reads one cached training epoch of a UCSD dataset without the model
(the data pipeline's cost).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

import anomaly.jobs.run  # noqa: F401  (registers the config's resolvers)
from anomaly.atomic import write_atomic
from anomaly.data.cache import cached_frames
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.volumes import TrainingVolumes
from anomaly.hardware import device_name
from anomaly.lightning.module import AnomalyModule
from anomaly.model.convlstm import count_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"
GATES = ((32, 64, 55), (64, 128, 27), (128, 256, 13))  # (Cin + C, 4C, H = W) of the three ConvLSTM levels


@dataclass
class Mode:
    name: str
    precision: str  # fp32 | bf16
    compiled: bool
    compile_mode: str | None = None
    train_volumes_per_s: float = 0.0
    test_frames_per_s: float = 0.0
    train_gflops: float = 0.0
    test_gflops: float = 0.0
    train_fraction_of_peak: float = 0.0
    test_fraction_of_peak: float = 0.0
    compile_s: float = 0.0
    kernel_bytes_train: int | None = None  # compiled modes: inductor's kernels, per training step and test batch
    kernel_bytes_test: int | None = None
    bound_train_volumes_per_s: float | None = None  # the convolutions alone + those bytes at the memory bandwidth
    bound_test_frames_per_s: float | None = None
    bound_train_fraction_of_peak: float | None = None
    bound_test_fraction_of_peak: float | None = None


def build(tau: int, device: torch.device) -> AnomalyModule:
    """The LightningModule of ``conf/`` (the recipe's defaults), on ``device``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"tau={tau}", "dataset=ped2"])
    return instantiate(cfg.model).to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step: Callable[[], None], steps: int, device: torch.device, repeats: int = 3) -> float:
    """Seconds per call of ``step``, after the caller's warm-up: the best of ``repeats`` runs of ``steps`` calls.

    The peak, the ceiling and every mode take this same statistic, so that their ratios compare like with like;
    the best run is the one the machine's other load (a shared 2-core VM's neighbours) disturbed least.
    """
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = min(best, (time.perf_counter() - started) / steps)
    return best


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    if name == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}


def conv_peak(batch: int, device: torch.device, dtype: torch.dtype, steps: int) -> dict[str, float]:
    """GFLOP/s of the three gate convolutions (forward, padding 1) at ``batch``, in each memory layout.

    Both layouts, because they differ by up to 2.5 times on a CPU (oneDNN), and compiled code picks channels-last.
    """
    rates = {}
    for (cin, cout, size), (layout, memory_format) in itertools.product(GATES, LAYOUTS.items()):
        x = torch.rand(batch, cin, size, size, device=device, dtype=dtype).contiguous(memory_format=memory_format)
        w = (torch.rand(cout, cin, 3, 3, device=device, dtype=dtype) * 0.01).contiguous(memory_format=memory_format)
        conv = functools.partial(F.conv2d, x, w, padding=1)
        warm_up(conv, device)
        flops = 2 * batch * cout * cin * 9 * size * size
        rates[f"{cin}->{cout}@{size} {layout}"] = flops / timed(conv, steps * 3, device) / 1e9
    return rates


def memory_bandwidth(device: torch.device, steps: int) -> float:
    """GB/s of a streaming add over 64 MiB fp32 buffers (two read, one written), the access pattern of the gate
    kernels: they read maps and write maps, far larger together than the caches."""
    a, b, c = (torch.rand(16 * 2**20, device=device) for _ in range(3))
    add = functools.partial(torch.add, a, b, out=c)
    warm_up(add, device)
    return 3 * a.nbytes / timed(add, steps, device) / 1e9


@contextlib.contextmanager
def inductor_kernel_bytes() -> Iterator[dict[str, int | None]]:
    """Yields a dict whose ``"bytes"``, on exit, holds the bytes that the kernels inductor generated inside read
    and write: inductor's own count, each buffer a kernel touches once (a floor on its memory traffic), for
    every graph compiled inside (compile caches off, so that each is compiled and counted). Library calls
    (convolutions, and ops inductor does not generate) are not counted. None where inductor counted nothing at
    all (no graph compiled, or a torch whose private metrics moved), never a silent 0."""
    from torch._inductor import metrics
    from torch._inductor.scheduler import ExternKernelSchedulerNode, NopKernelSchedulerNode

    counted: dict[str, int | None] = {"bytes": None}
    log = logging.getLogger("torch._inductor.compile_fx.__inductor_metrics")  # inductor counts while it logs INFO
    level = log.level
    log.setLevel(logging.INFO)
    metrics.reset()
    try:
        with torch.compiler.config.patch(force_disable_caches=True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "dynamo_pgo force disabled")  # what we asked for, said once a graph
            yield counted
    finally:
        log.setLevel(level)
    library = (ExternKernelSchedulerNode, NopKernelSchedulerNode)
    if metrics.nodes_num_elem:  # each scheduled node (kernel or library call) with its bytes // 4
        counted["bytes"] = sum(4 * n for node, n in metrics.nodes_num_elem if not isinstance(node, library))


def warm_up(step: Callable[[], object], device: torch.device, seconds: float = 0.3) -> None:
    """Call ``step`` for at least ``seconds`` (and 3 times): the first calls of a shape pick and build its kernel."""
    started = time.perf_counter()
    for calls in itertools.count(1):
        step()
        synchronize(device)
        if calls >= 3 and time.perf_counter() - started >= seconds:
            return


@dataclass(frozen=True)
class Convolution:
    """One convolution call of the network: its arguments' shapes, and which gradients its backward computes."""

    input: tuple[int, ...]
    weight: tuple[int, ...]
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    transposed: bool
    output_padding: tuple[int, ...]
    input_grad: bool
    weight_grad: bool


class ConvolutionRecorder(TorchDispatchMode):
    """Counts the ``aten.convolution`` calls that run inside it (every conv and deconv of the network)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[Convolution] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204  (torch's signature)
        if func is torch.ops.aten.convolution.default:
            x, w, b, stride, padding, _, transposed, output_padding, _ = args
            shapes = (tuple(x.shape), tuple(w.shape), b is not None, tuple(stride), tuple(padding), transposed)
            self.calls[Convolution(*shapes, tuple(output_padding), x.requires_grad, w.requires_grad)] += 1
        return func(*args, **(kwargs or {}))


def conv_seconds(calls: Counter[Convolution], backward: bool, device: torch.device, dtype: torch.dtype,
                 steps: int) -> float:  # fmt: skip
    """Seconds that ``calls`` take alone: each convolution (and its backward) on random tensors, in the faster of
    the two memory layouts, times its count."""
    total = 0.0
    for conv, count in calls.items():
        b = torch.zeros(conv.weight[1 if conv.transposed else 0], device=device, dtype=dtype) if conv.bias else None
        args = (conv.stride, conv.padding, [1, 1], conv.transposed, conv.output_padding, 1)
        bias_sizes = None if b is None else list(b.shape)
        mask = [conv.input_grad, conv.weight_grad, conv.bias and conv.weight_grad]
        seconds = []
        for memory_format in LAYOUTS.values():
            x = torch.rand(conv.input, device=device, dtype=dtype).contiguous(memory_format=memory_format)
            w = (torch.rand(conv.weight, device=device, dtype=dtype) * 0.01).contiguous(memory_format=memory_format)
            y = torch.ops.aten.convolution(x, w, b, *args)

            def step(x=x, w=w, b=b, y=y, args=args, bias_sizes=bias_sizes, mask=mask) -> None:
                torch.ops.aten.convolution(x, w, b, *args)
                if backward:
                    torch.ops.aten.convolution_backward(y, x, w, bias_sizes, *args, mask)

            warm_up(step, device, seconds=0.1)
            seconds.append(timed(step, steps, device))
        total += count * min(seconds)
    return total


def count_flops(module: AnomalyModule, tau: int, device: torch.device) -> tuple[float, float]:
    """FLOPs of one training volume (forward + backward) and of one test window (forward): the model's own
    arithmetic (deconv3 as its transposed convolution, not the padded sub-pixel form the fast path runs)."""
    volume = torch.randint(0, 256, (1, 2 * tau, 1, 227, 227), dtype=torch.uint8, device=device)
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


def model_convolutions(tau: int, batch: int, test_batch: int, device: torch.device) -> tuple[Counter, Counter]:
    """The convolution calls of one training step at ``batch`` and of one test batch, as the network runs them."""
    module = build(tau, device)
    volume = torch.randint(0, 256, (batch, 2 * tau, 1, 227, 227), dtype=torch.uint8, device=device)
    with ConvolutionRecorder() as train:
        module.loss(volume)
    windows = torch.randint(0, 256, (test_batch, 2 * tau, 1, 227, 227), dtype=torch.uint8, device=device)
    with torch.no_grad(), ConvolutionRecorder() as test:
        module.eval().window_errors(windows)
    return train.calls, test.calls


def measure(mode: Mode, tau: int, batch: int, test_batch: int, steps: int, device: torch.device) -> Mode:
    torch.manual_seed(0)
    module = build(tau, device)
    if mode.compiled:
        module.net.compile(mode=mode.compile_mode)
    optimizer = module.configure_optimizers()
    volume = torch.randint(0, 256, (batch, 2 * tau, 1, 227, 227), dtype=torch.uint8, device=device)
    windows = torch.randint(0, 256, (test_batch, 2 * tau, 1, 227, 227), dtype=torch.uint8, device=device)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision(mode.precision, device):
            loss = module.loss(volume)
        loss.backward()
        optimizer.step()

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
    mode.train_volumes_per_s = batch / timed(train_step, steps, device)
    module.eval()
    for _ in range(2):
        test_step()
    mode.test_frames_per_s = test_batch / timed(test_step, steps, device)
    return mode


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (after warm-up)")
    parser.add_argument("--batch", type=int, default=4, help="training batch (the recipe's 4 for tau=5)")
    parser.add_argument("--test-batch", type=int, default=8)
    parser.add_argument("--tau", type=int, default=5)
    parser.add_argument("--modes", help="comma-separated names to run (default: all of this device)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--ucsd", type=Path, help="a UCSD Ped1/Ped2 root: also time a cached epoch of it")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/frames"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    modes = modes_for(device)
    if args.modes:
        wanted = {m.strip() for m in args.modes.split(",")}
        if unknown := wanted - {m.name for m in modes}:
            parser.error(f"--modes: no mode {', '.join(map(repr, sorted(unknown)))} on {device.type}; the modes here "
                         f"are {', '.join(repr(m.name) for m in modes)}")  # fmt: skip
        modes = [m for m in modes if m.name in wanted]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}")

    peaks = {p: conv_peak(args.batch, device, dtype, args.steps) for p, dtype in (("fp32", torch.float32),
                                                                                 ("bf16", torch.bfloat16))}  # fmt: skip
    peak = {p: max(rates.values()) for p, rates in peaks.items()}
    for p, rates in peaks.items():
        shapes = ", ".join(f"{shape} {rate:.0f}" for shape, rate in rates.items())
        print(f"peak {p}: {peak[p]:.0f} GFLOP/s (3x3 gate convolutions at batch {args.batch}: {shapes})")

    counter = build(args.tau, device)
    train_flops, test_flops = count_flops(counter, args.tau, device)
    print(f"parameters: {count_parameters(counter.net):,}; FLOPs (FlopCounterMode): {train_flops / 1e9:.2f} G "
          f"per training volume (forward + backward), {test_flops / 1e9:.2f} G per test window")  # fmt: skip

    train_convs, test_convs = model_convolutions(args.tau, args.batch, args.test_batch, device)
    ceiling, seconds = {}, {}
    for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        seconds[p] = (conv_seconds(train_convs, True, device, dtype, args.steps),
                      conv_seconds(test_convs, False, device, dtype, args.steps))  # fmt: skip
        volumes, frames = args.batch / seconds[p][0], args.test_batch / seconds[p][1]
        ceiling[p] = {
            "train_volumes_per_s": volumes,
            "test_frames_per_s": frames,
            "train_fraction_of_peak": volumes * train_flops / 1e9 / peak[p],
            "test_fraction_of_peak": frames * test_flops / 1e9 / peak[p],
        }
        print(f"{p} convolutions alone (the {sum(train_convs.values())} of a training step, forward + backward, and "
              f"the {sum(test_convs.values())} of a test batch, each timed on its own): at most {volumes:.2f} "
              f"volumes/s = {100 * ceiling[p]['train_fraction_of_peak']:.1f}% of the peak, {frames:.1f} frames/s = "
              f"{100 * ceiling[p]['test_fraction_of_peak']:.1f}%")  # fmt: skip
    bandwidth = memory_bandwidth(device, args.steps)
    print(f"memory bandwidth: {bandwidth:.1f} GB/s (a streaming add over 64 MiB buffers)")

    print(f"\n{'mode':18s} {'train vol/s':>11s} {'GFLOP/s':>8s} {'of peak':>8s}   {'test fr/s':>9s} {'GFLOP/s':>8s} "
          f"{'of peak':>8s}   compile")  # fmt: skip
    for mode in modes:
        measure(mode, args.tau, args.batch, args.test_batch, args.steps, device)
        mode.train_gflops = mode.train_volumes_per_s * train_flops / 1e9
        mode.test_gflops = mode.test_frames_per_s * test_flops / 1e9
        mode_peak = peak[mode.precision]
        mode.train_fraction_of_peak = mode.train_gflops / mode_peak
        mode.test_fraction_of_peak = mode.test_gflops / mode_peak
        compile_time = f"{mode.compile_s:.0f} s" if mode.compiled else "-"
        print(f"{mode.name:18s} {mode.train_volumes_per_s:11.2f} {mode.train_gflops:8.1f} "
              f"{100 * mode.train_fraction_of_peak:7.1f}%   {mode.test_frames_per_s:9.1f} {mode.test_gflops:8.1f} "
              f"{100 * mode.test_fraction_of_peak:7.1f}%   {compile_time}")  # fmt: skip
        if mode.compiled and None in (mode.kernel_bytes_train, mode.kernel_bytes_test):
            print(f"{'':18s} no bound: inductor counted no kernels (its private metrics differ in this torch)")
        elif mode.compiled:  # the convolutions alone, plus the compiled kernels' bytes at the memory bandwidth
            conv_train_s, conv_test_s = seconds[mode.precision]
            mode.bound_train_volumes_per_s = args.batch / (conv_train_s + mode.kernel_bytes_train / 1e9 / bandwidth)
            mode.bound_test_frames_per_s = args.test_batch / (conv_test_s + mode.kernel_bytes_test / 1e9 / bandwidth)
            mode.bound_train_fraction_of_peak = mode.bound_train_volumes_per_s * train_flops / 1e9 / mode_peak
            mode.bound_test_fraction_of_peak = mode.bound_test_frames_per_s * test_flops / 1e9 / mode_peak
            print(f"{'':18s} bound: the convolutions alone + its kernels' {mode.kernel_bytes_train / 1e6:.0f} MB per "
                  f"training step and {mode.kernel_bytes_test / 1e6:.0f} MB per test batch at {bandwidth:.1f} GB/s: "
                  f"at most {mode.bound_train_volumes_per_s:.2f} volumes/s = "
                  f"{100 * mode.bound_train_fraction_of_peak:.1f}%, {mode.bound_test_frames_per_s:.1f} frames/s = "
                  f"{100 * mode.bound_test_fraction_of_peak:.1f}%")  # fmt: skip
    figures = {
        "device": name,
        "torch": torch.__version__,
        "batch": args.batch,
        "test_batch": args.test_batch,
        "tau": args.tau,
        "peak_gflops": peak,
        "gate_gflops": peaks,
        "flops": {"train_volume": train_flops, "test_window": test_flops},
        "convolutions_alone": ceiling,
        "memory_gb_per_s": bandwidth,
        "modes": [asdict(mode) for mode in modes],
    }
    if args.json:
        write_atomic(args.json, json.dumps(figures, indent=1))
        print(f"\nwrote {args.json}")
    if args.ucsd:
        cached_epoch(args.ucsd, args.cache_dir, args.batch, args.tau)
    return figures


def cached_epoch(root: Path, cache_dir: Path, batch: int, tau: int) -> None:
    dataset = load_ucsd(root, root.name)
    cached_frames(dataset.train, 227, cache_dir)  # decode once (not timed)
    started = time.perf_counter()
    frames = cached_frames(dataset.train, 227, cache_dir)
    volumes = TrainingVolumes(frames, 2 * tau, (1, 2, 3))
    for _ in DataLoader(volumes, batch_size=batch, shuffle=True):
        pass
    seconds = time.perf_counter() - started
    print(
        f"cached epoch of {root.name}: {len(volumes)} volumes in {seconds:.1f} s = "
        f"{len(volumes) / seconds:.0f} volumes/s (data only, batch {batch}, tau {tau}, strides 1-3)"
    )


if __name__ == "__main__":
    main()
