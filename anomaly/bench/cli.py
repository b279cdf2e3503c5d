"""``python -m anomaly.bench``: measures the machine, the network's bounds and every mode; prints; writes JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import anomaly.bench
from anomaly.atomic import check_writable, write_atomic
from anomaly.bench.bounds import Convolution, ConvolutionsAlone, model_convolutions
from anomaly.bench.modes import Mode, build, count_flops, measure, modes_for
from anomaly.bench.peaks import PRECISIONS, conv_peak, memory_bandwidth
from anomaly.data.cache import cached_frames
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.video import VideoDataset
from anomaly.data.volumes import TrainingVolumes
from anomaly.errors import AnomalyError
from anomaly.hardware import device_name, resolve_device
from anomaly.model.convlstm import FRAME_SIZE, count_parameters

CEILING = (
    "train_volumes_per_s",
    "test_frames_per_s",
    "train_peak_gflops",
    "test_peak_gflops",
    "train_fraction_of_peak",
    "test_fraction_of_peak",
)  # the JSON's "convolutions_alone"


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[Mode]]:
    """The arguments, and the modes to run (all of the device's unless ``--modes`` names some)."""
    parser = argparse.ArgumentParser(description=anomaly.bench.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu, cuda or cuda:N")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (after warm-up)")
    parser.add_argument("--batch", type=int, default=4, help="training batch (the recipe's 4 for tau=5)")
    parser.add_argument("--test-batch", type=int, default=8)
    parser.add_argument("--tau", type=int, default=5)
    parser.add_argument("--modes", help="comma-separated names to run (default: all of this device)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--ucsd", type=Path, help="a UCSD Ped1/Ped2 root: also time a cached epoch of it")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/frames"))
    args = parser.parse_args(argv)
    for name in ("steps", "batch", "test_batch", "tau"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)}: must be at least 1")
    try:
        args.device = resolve_device(args.device, "--device")
        args.ucsd = load_ucsd(args.ucsd, args.ucsd.name) if args.ucsd else None
    except AnomalyError as err:
        parser.error(str(err))
    try:
        if args.json:
            check_writable(args.json)
    except OSError as err:
        parser.error(f"--json {args.json}: cannot write it ({err.strerror or err}); give a writable file")
    modes = modes_for(args.device)
    if args.modes:
        wanted = {m.strip() for m in args.modes.split(",")}
        if unknown := wanted - {m.name for m in modes}:
            parser.error(f"--modes: no mode {', '.join(map(repr, sorted(unknown)))} on {args.device.type}; the "
                         f"modes here are {', '.join(repr(m.name) for m in modes)}")  # fmt: skip
        modes = [m for m in modes if m.name in wanted]
    return args, modes


def main(argv: list[str] | None = None) -> dict:
    args, modes = parse(argv)
    device, batches = args.device, (args.batch, args.test_batch)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}")

    gates, peak_now = {}, {}
    for p, dtype in PRECISIONS.items():
        gates[p], peak_now[p] = conv_peak(args.batch, device, dtype, args.steps)
    peak = {p: max(rates.values()) for p, rates in gates.items()}
    for p, rates in gates.items():
        shapes = ", ".join(f"{shape} {rate:.0f}" for shape, rate in rates.items())
        print(f"peak {p}: {peak[p]:.0f} GFLOP/s (3x3 gate convolutions at batch {args.batch}: {shapes})")

    counter = build(args.tau, device)
    flops = count_flops(counter, args.tau, device)
    print(f"parameters: {count_parameters(counter.net):,}; FLOPs (FlopCounterMode): {flops[0] / 1e9:.2f} G "
          f"per training volume (forward + backward), {flops[1] / 1e9:.2f} G per test window")  # fmt: skip

    train_convs, test_convs = model_convolutions(counter, args.tau, args.batch, args.test_batch, device)
    ceiling, seconds = {}, {}
    for p in PRECISIONS:
        alone, seconds[p] = convolutions_alone(train_convs, test_convs, batches, device, p, args.steps, peak_now[p])
        alone.rate(flops)
        ceiling[p] = {key: getattr(alone, key) for key in CEILING}
        print(f"{alone.name} (the {sum(train_convs.values())} of a training step, forward + backward, and the "
              f"{sum(test_convs.values())} of a test batch, each timed on its own): at most "
              f"{alone.train_volumes_per_s:.2f} volumes/s = {100 * alone.train_fraction_of_peak:.1f}% of the peak "
              f"beside it ({alone.train_peak_gflops:.0f} GFLOP/s), {alone.test_frames_per_s:.1f} frames/s = "
              f"{100 * alone.test_fraction_of_peak:.1f}% ({alone.test_peak_gflops:.0f})")  # fmt: skip
    bandwidth = memory_bandwidth(device, args.steps)
    print(f"memory bandwidth: {bandwidth:.1f} GB/s (a streaming add over 64 MiB buffers)")

    print(f"\n{'mode':18s} {'train vol/s':>11s} {'GFLOP/s':>8s} {'of peak':>8s}   {'test fr/s':>9s} {'GFLOP/s':>8s} "
          f"{'of peak':>8s}   compile")  # fmt: skip
    for mode in modes:
        measure(mode, args.tau, args.batch, args.test_batch, args.steps, device, peak_now[mode.precision])
        mode.rate(flops)
        compile_time = f"{mode.compile_s:.0f} s" if mode.compiled else "-"
        print(f"{mode.name:18s} {mode.train_volumes_per_s:11.2f} {mode.train_gflops:8.1f} "
              f"{100 * mode.train_fraction_of_peak:7.1f}%   {mode.test_frames_per_s:9.1f} {mode.test_gflops:8.1f} "
              f"{100 * mode.test_fraction_of_peak:7.1f}%   {compile_time}")  # fmt: skip
        print(f"{'':18s} its {mode.precision} peak, sustained beside its runs: {mode.train_peak_gflops:.0f} GFLOP/s "
              f"(training), {mode.test_peak_gflops:.0f} (testing); of the {peak[mode.precision]:.0f} at the start: "
              f"{100 * mode.train_gflops / peak[mode.precision]:.1f}% and "
              f"{100 * mode.test_gflops / peak[mode.precision]:.1f}%")  # fmt: skip
        alone = ceiling[mode.precision]
        limit = "the convolutions alone", (alone["train_fraction_of_peak"], alone["test_fraction_of_peak"])
        peaks = alone["train_peak_gflops"], alone["test_peak_gflops"]
        if mode.compiled and not mode.bound(seconds[mode.precision], batches, bandwidth, flops, peaks):
            print(f"{'':18s} no bound: inductor counted no kernels (its private metrics differ in this torch)")
        elif mode.compiled:
            train, test = mode.bound_train_fraction_of_peak, mode.bound_test_fraction_of_peak
            limit = "its bound", (train, test)
            print(f"{'':18s} bound: the convolutions alone + its kernels' {mode.kernel_bytes_train / 1e6:.0f} MB "
                  f"per training step and {mode.kernel_bytes_test / 1e6:.0f} MB per test batch at {bandwidth:.1f} "
                  f"GB/s: at most {mode.bound_train_volumes_per_s:.2f} volumes/s = {100 * train:.1f}%, "
                  f"{mode.bound_test_frames_per_s:.1f} frames/s = {100 * test:.1f}% (of the peaks beside the "
                  f"convolutions alone)")  # fmt: skip
        if note := above_its_limit(mode, *limit):
            print(f"{'':18s} {note}")
    figures = {
        "device": name,
        "torch": torch.__version__,
        "batch": args.batch,
        "test_batch": args.test_batch,
        "tau": args.tau,
        "peak_gflops": peak,
        "gate_gflops": gates,
        "flops": {"train_volume": flops[0], "test_window": flops[1]},
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


def above_its_limit(mode: Mode, limit: str, fractions: tuple[float, float]) -> str | None:
    """A note where ``mode`` measured a higher fraction of its peak than ``limit`` (its ceiling or bound, at
    ``fractions`` of theirs) allows: no code can do that, a shared machine's speed can. None where it did not."""
    measured = mode.train_fraction_of_peak, mode.test_fraction_of_peak
    pairs = zip(("training", "testing"), measured, fractions, strict=True)
    above = [f"{what} ({100 * got:.1f}% against {100 * most:.1f}%)" for what, got, most in pairs if got > most]
    if not above:
        return None
    return (
        f"note: above {limit} in {' and '.join(above)}: the machine's speed moved between the two, in a way "
        "the peaks beside them did not catch (a slow spell of a shared machine slows the network's smaller "
        "convolutions more than the gate convolution the peak is measured on); compare another run"
    )


def convolutions_alone(train: Counter[Convolution], test: Counter[Convolution], batches: tuple[int, int],
                       device: torch.device, precision: str, steps: int,
                       peak: Callable[[float], float]) -> tuple[Mode, tuple[float, float]]:  # fmt: skip
    """The ceiling: every convolution call of a training step and of a test batch, each timed on its own in
    ``precision`` (fp32 or bf16), as a mode whose peaks are measured beside it as beside a mode's runs: sustained over
    ``steps`` times its seconds just before and just after, the higher reading kept, the reading between the
    training and the test convolutions shared. Also returns the seconds per training step and per test batch."""
    train_calls = ConvolutionsAlone(train, True, device, PRECISIONS[precision])
    test_calls = ConvolutionsAlone(test, False, device, PRECISIONS[precision])
    before = peak(steps * train_calls.seconds(1, repeats=1))  # a probe sets how long the first reading lasts
    train_s = train_calls.seconds(steps)
    between = peak(steps * train_s)
    test_s = test_calls.seconds(steps)
    after = peak(steps * test_s)
    alone = Mode(f"{precision} convolutions alone", precision, False, train_volumes_per_s=batches[0] / train_s,
                 test_frames_per_s=batches[1] / test_s, train_peak_gflops=max(before, between),
                 test_peak_gflops=max(between, after))  # fmt: skip
    return alone, (train_s, test_s)


def cached_epoch(dataset: VideoDataset, cache_dir: Path, batch: int, tau: int) -> None:
    """The data pipeline's cost: one cached training epoch of a UCSD dataset read without the model."""
    cached_frames(dataset.train, FRAME_SIZE, cache_dir)  # decode once (not timed)
    started = time.perf_counter()
    frames = cached_frames(dataset.train, FRAME_SIZE, cache_dir)
    volumes = TrainingVolumes(frames, 2 * tau, (1, 2, 3))
    for _ in DataLoader(volumes, batch_size=batch, shuffle=True):
        pass
    seconds = time.perf_counter() - started
    print(
        f"cached epoch of {dataset.name}: {len(volumes)} volumes in {seconds:.1f} s = "
        f"{len(volumes) / seconds:.0f} volumes/s (data only, batch {batch}, tau {tau}, strides 1-3)"
    )
