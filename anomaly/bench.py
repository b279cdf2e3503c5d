"""Benchmark: parameters, training throughput and test-time frames/s on this machine.

``python -m anomaly.bench [--device cuda] [--steps 10] [--batch 4] [--tau 5] [--ucsd ROOT]``. Prints only
what it measured: training volumes/s (forward + backward + Adam step, batch 4, tau 5, 227x227, prediction)
and test frames/s (one scored frame per test window, batch 8, no gradients), each after warm-up steps.
With ``--ucsd ROOT`` (e.g. ../shared/data/ped2) it also reads one whole training epoch (strides 1, 2, 3)
from the frame cache, without the model, and prints volumes/s: the data pipeline's cost per epoch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from anomaly.data.cache import cached_frames
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.volumes import TrainingVolumes
from anomaly.lightning.module import AnomalyModule
from anomaly.model.convlstm import count_parameters


def _timed(step, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--test-batch", type=int, default=8)
    parser.add_argument("--tau", type=int, default=5)
    parser.add_argument("--ucsd", type=Path, help="a UCSD Ped1/Ped2 root: also time a cached epoch of it")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/frames"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    module = AnomalyModule(tau=args.tau).to(device)
    optimizer = module.configure_optimizers()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"parameters: {count_parameters(module.net):,}")

    volume = torch.rand(args.batch, 2 * args.tau, 1, 227, 227, device=device)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        module._loss(volume).backward()
        optimizer.step()

    seconds = _timed(train_step, args.steps, args.warmup, device)
    print(
        f"training: {args.steps * args.batch / seconds:.2f} volumes/s "
        f"(batch {args.batch}, tau {args.tau}, forward+backward+step, {seconds / args.steps * 1000:.0f} ms/step)"
    )

    windows = torch.rand(args.test_batch, args.tau, 1, 227, 227, device=device)

    @torch.no_grad()
    def test_step() -> None:
        module.net(windows, tau_out=args.tau)

    module.eval()
    seconds = _timed(test_step, args.steps, args.warmup, device)
    print(
        f"test: {args.steps * args.test_batch / seconds:.1f} frames/s (batch {args.test_batch} windows, "
        f"one scored frame per window)"
    )

    if args.ucsd:
        cached_epoch(args.ucsd, args.cache_dir, args.batch, args.tau)


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
