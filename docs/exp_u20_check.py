"""What torch's ``exp_u20`` would give compiled fp32 scoring in place of Sleef's exp (docs/benchmarks.md).

``python docs/exp_u20_check.py``: runs itself three times for each exp, alternating, each time in a fresh process
with torch's caches off (inductor's graph cache keys do not see a patched code generator). A run compiles the
network, scores test batches of 8 windows (tau 5), and prints a batch's time and the time in inductor's kernels
(``torch.profiler``, 3 x 5 batches), the cell's arithmetic at the 55x55 level compiled alone (as in
``scoring_profile.py``) and the exp's own error against float64; then the largest difference between the two
exps' outputs.

Inductor's C++ code writes each sigmoid as ``1 / (1 + x.neg().exp())``, a string of its own: patching its ``exp``
override alone leaves it on Sleef's exp. The patch here replaces both. It is an experiment, not part of the
package: it changes a private code generator for the whole process. The README's figures were taken when the
compiled network used inductor's decomposed tanh (``2 / (1 + exp(-2x)) - 1``) and the patch replaced its exp too;
since 2026-12-07 the network keeps Sleef's tanh (docs/benchmarks.md: the decomposed form's relative error), so the
patch reaches the exp and the sigmoids only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch._inductor.codegen.cpp as cpp
import torch._inductor.config as inductor
from scoring_profile import gate_arithmetic_ms  # docs/ is this script's folder, so on its path
from torch.profiler import ProfilerActivity, profile

from anomaly.bench.modes import build

OUT = Path("/tmp/exp_u20_check")


def use_exp_u20() -> None:
    cpp.CppVecOverrides.exp = staticmethod(lambda x: f"{x}.exp_u20()")
    cpp.CppVecOverrides.sigmoid = staticmethod(lambda x: f"decltype({x})(1)/(decltype({x})(1) + {x}.neg().exp_u20())")


def exp_error() -> float:
    """The compiled exp's largest error over [-80, 80], in units in the last place of its float32 result."""
    x = torch.linspace(-80, 80, 2_000_001)
    y = torch.compile(torch.exp)(x).double()
    spacing = torch.exp2(torch.floor(torch.log2(y)) - 23)
    return ((y - torch.exp(x.double())).abs() / spacing).max().item()


def run(exp: str) -> None:
    if exp == "u20":
        use_exp_u20()
    inductor.cpp.enable_kernel_profile = True
    windows = torch.randint(0, 256, (8, 10, 1, 227, 227), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    module = build(5, torch.device("cpu"), compiled=True)
    module.eval()
    with torch.no_grad():
        torch.save(module.window_errors(windows)["output"], OUT / f"{exp}.pt")
        for _ in range(3):
            module.window_errors(windows)
        walls, kernels = [], []
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(5):
                module.window_errors(windows)
            walls.append((time.perf_counter() - started) / 5e-3)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(5):
                    module.window_errors(windows)
            kernels.append(sum(e.self_cpu_time_total for e in prof.key_averages() if "cpp_fused" in e.key) / 5e3)
    walls_text, kernels_text = ", ".join(f"{w:.1f}" for w in walls), ", ".join(f"{k:.1f}" for k in kernels)
    print(
        f"{exp:5s}: a test batch {walls_text} ms; inductor's kernels {kernels_text} ms; "
        f"the cell's arithmetic alone {gate_arithmetic_ms(torch.sigmoid, torch.tanh):.3f} ms; exp {exp_error():.2f} ULP"
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    env = {**os.environ, "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
    for _ in range(3):
        for exp in ("sleef", "u20"):
            subprocess.run([sys.executable, __file__, exp], env=env, check=True)
    sleef, u20 = torch.load(OUT / "sleef.pt"), torch.load(OUT / "u20.pt")
    print(f"outputs: largest difference {(sleef - u20).abs().max():.2e}, largest value {sleef.abs().max():.2e}")


if __name__ == "__main__":
    run(sys.argv[1]) if len(sys.argv) > 1 else main()
