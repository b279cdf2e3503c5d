"""Benchmark: parameters, training throughput and test-time frames/s on this machine.

``python -m anomaly.bench [--device cuda] [--steps 10] [--batch 4] [--tau 5]``. Prints only what it measured:
training volumes/s (forward + backward + Adam step, batch 4, tau 5, 227x227, prediction) and test frames/s
(one scored frame per test window, batch 8, no gradients), each after warm-up steps.
"""

from __future__ import annotations

import argparse
import time

import torch

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


if __name__ == "__main__":
    main()
