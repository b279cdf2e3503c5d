"""Today's compiled network against its forward at an earlier commit, more compile options, or stand-in cells, timed
alternately in one process (docs/benchmarks.md).

``python docs/alternating_ab.py a5f1ba3 --what train --rounds 80``: builds two compiled modules as
``model.compile=true`` does (batch 4 training steps, or batch 8 test batches, tau 5), the first with
``EncoderForecaster.forward`` as it was at that commit, the second with today's; then runs one step of each in
turn, ``--rounds`` times, and prints the median of the per-round ratios (today / then) and how often today's was
faster. One process and alternating rounds, because this machine's speed drifts by more than the differences
measured. ``python docs/alternating_ab.py --options '{"cpp.simdlen": 256}' --rounds 40`` compares instead today's
network compiled with ``compile_options()`` against the same with those inductor options added (variant / base).
``python docs/alternating_ab.py --cells trivial --rounds 40`` compares today's network against the same with every
cell's arithmetic replaced (wrong maths, timing only): ``multiplications``, each sigmoid and tanh a multiplication
(the same reads and writes); ``trivial``, ``h = z_i + z_o`` and ``c = z_f + z_g + P_i * c_prev`` (every weight
still gets a gradient). Bounds on what cheaper transcendentals, or any cell kernel at all, could gain.

``torch.compile`` reuses a compiled graph for a second module whose guards pass, so two modules compiled with the
same options would both run the first one's graph. The second is therefore compiled with one more option, set to its
default (``trace.enabled=False``: a different set of options, the same code), and the script checks that two graphs
were made.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from torch._dynamo.utils import counters

from anomaly.bench.modes import build, training_step
from anomaly.bench.timing import random_volumes
from anomaly.model.convlstm import ConvLSTMCell, State, compile_options

ROOT = Path(__file__).resolve().parents[1]


def forward_at(commit: str) -> types.FunctionType:
    """``EncoderForecaster.forward`` as ``anomaly/model/convlstm.py`` had it at ``commit``."""
    shown = subprocess.run(["git", "show", f"{commit}:anomaly/model/convlstm.py"], cwd=ROOT, capture_output=True,
                           text=True)  # fmt: skip
    if shown.returncode != 0:
        sys.exit(f"commit {commit!r}: git has no anomaly/model/convlstm.py there ({shown.stderr.strip()})")
    source = shown.stdout
    path = Path(tempfile.mkdtemp()) / "convlstm_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("convlstm_then", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # torch.compile looks the traced functions' module up by name
    spec.loader.exec_module(module)
    return module.EncoderForecaster.forward


def fake_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return x * 0.25 + 0.5


def fake_tanh(x: torch.Tensor) -> torch.Tensor:
    return x * 0.5


class MultiplicationCell(ConvLSTMCell):
    """The cell with each sigmoid and tanh a multiplication: its reads, writes and graph, without transcendentals."""

    def forward(self, x: torch.Tensor | None, state: State | None) -> State:
        z_i, z_f, z_o, z_g = self.preactivations(x, state).chunk(4, dim=1)
        if state is None:
            c = fake_sigmoid(z_i) * fake_tanh(z_g)
            return fake_sigmoid(z_o) * fake_tanh(c), c
        p_i, p_f, p_o = self.peephole
        c = fake_sigmoid(z_f + p_f * state[1]) * state[1] + fake_sigmoid(z_i + p_i * state[1]) * fake_tanh(z_g)
        return fake_sigmoid(z_o + p_o * state[1]) * fake_tanh(c), c


class TrivialCell(ConvLSTMCell):
    """The cell with next to no arithmetic: one addition for h, one or two for c."""

    def forward(self, x: torch.Tensor | None, state: State | None) -> State:
        z_i, z_f, z_o, z_g = self.preactivations(x, state).chunk(4, dim=1)
        return z_i + z_o, z_f + z_g if state is None else z_f + z_g + self.peephole[0] * state[1]


CELLS = {"multiplications": MultiplicationCell, "trivial": TrivialCell}


def step(what: str, options: dict, forward: types.FunctionType | None = None,
         cell: type[ConvLSTMCell] | None = None):  # noqa: ANN201  # fmt: skip
    """One compiled training step or test batch, compiled with ``options``; ``forward`` (None: today's) bound to the
    module's network, and its cells made ``cell``s (None: as they are)."""
    torch.manual_seed(0)
    module = build(5, torch.device("cpu"), compiled=True)
    if forward is not None:
        module.net.forward = types.MethodType(forward, module.net)
    if cell is not None:
        for layer in module.net.modules():
            if type(layer) is ConvLSTMCell:
                layer.__class__ = cell
    module._graphs = {f.__name__: torch.compile(f, options=options) for f in (module._loss, module._errors)}
    if what == "train":
        return training_step(module, random_volumes(4, 5))
    module.eval()
    windows = random_volumes(8, 5)

    @torch.no_grad()
    def test_batch() -> None:
        module.window_errors(windows)

    return test_batch


def options_json(text: str) -> dict:
    """``--options``: a JSON object of inductor options, e.g. ``'{"cpp.simdlen": 256}'``."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})") from None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"cpp.simdlen\": 256}'")
    unknown = sorted(set(options) - set(torch._inductor.list_options()))
    if unknown:
        raise argparse.ArgumentTypeError(f"not inductor options: {', '.join(unknown)} (torch._inductor.list_options())")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", nargs="?", help="the commit whose forward is compared with today's")
    parser.add_argument("--options", type=options_json, help="instead: inductor options (JSON) added to today's")
    parser.add_argument("--cells", choices=CELLS, help="instead: today's network with its cells' arithmetic replaced")
    parser.add_argument("--what", choices=("train", "test"), default="train")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give 1 or more")
    if sum(choice is not None for choice in (args.commit, args.options, args.cells)) != 1:
        parser.error("give one of a commit, --options and --cells")
    base = compile_options()
    other = {**base, "trace.enabled": False}  # the same options, plus one set to its default: a second graph is made
    if args.commit is not None:
        steps = [step(args.what, base, forward=forward_at(args.commit)), step(args.what, other)]
        names = (args.commit, "today", "today / then", "today")
    elif args.options is not None:
        steps = [step(args.what, base), step(args.what, {**base, **args.options})]
        names = ("base", f"with {args.options}", "variant / base", "the variant")
    else:
        steps = [step(args.what, base), step(args.what, other, cell=CELLS[args.cells])]
        names = ("today", f"{args.cells} cells", "variant / today", "the variant")
    for run in steps:
        for _ in range(3):  # the first call compiles
            run()
    if counters["stats"]["unique_graphs"] < 2:
        sys.exit("torch.compile made one graph for both modules: the comparison would time one graph twice")
    seconds: list[list[float]] = [[], []]
    for _ in range(args.rounds):
        for run, times in zip(steps, seconds, strict=True):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
    ratios = [now / then for then, now in zip(*seconds, strict=True)]
    then_ms, now_ms = (1e3 * statistics.median(times) for times in seconds)
    print(
        f"{args.what}: {names[0]} {then_ms:.1f} ms, {names[1]} {now_ms:.1f} ms (medians); {names[2]}: median "
        f"{statistics.median(ratios):.3f}, {names[3]} faster in {sum(r < 1 for r in ratios)} of {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
