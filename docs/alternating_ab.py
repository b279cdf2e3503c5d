"""The network's forward at an earlier commit against today's, or today's compile options against the same with
more options, compiled, timed alternately in one process (README).

``python docs/alternating_ab.py a5f1ba3 --what train --rounds 80``: builds two compiled modules as
``model.compile=true`` does (batch 4 training steps, or batch 8 test batches, tau 5), the first with
``EncoderForecaster.forward`` as it was at that commit, the second with today's; then runs one step of each in
turn, ``--rounds`` times, and prints the median of the per-round ratios (today / then) and how often today's was
faster. One process and alternating rounds, because this machine's speed drifts by more than the differences
measured. ``python docs/alternating_ab.py --options '{"cpp.simdlen": 256}' --rounds 40`` compares instead today's
network compiled with ``compile_options()`` against the same with those inductor options added (variant / base).

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
from anomaly.model.convlstm import compile_options

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


def step(what: str, forward: types.FunctionType | None, options: dict):  # noqa: ANN201
    """One compiled training step or test batch, compiled with ``options``; ``forward`` (None: today's) bound to the
    module's network."""
    torch.manual_seed(0)
    module = build(5, torch.device("cpu"), compiled=True)
    if forward is not None:
        module.net.forward = types.MethodType(forward, module.net)
    module._graphs = {f.__name__: torch.compile(f, options=options) for f in (module._loss, module._errors)}
    if what == "train":
        return training_step(module, torch.randint(0, 256, (4, 10, 1, 227, 227), dtype=torch.uint8))
    module.eval()
    windows = torch.randint(0, 256, (8, 10, 1, 227, 227), dtype=torch.uint8)

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
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", nargs="?", help="the commit whose forward is compared with today's")
    parser.add_argument("--options", type=options_json, help="instead: inductor options (JSON) added to today's")
    parser.add_argument("--what", choices=("train", "test"), default="train")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: give 1 or more")
    if (args.commit is None) == (args.options is None):
        parser.error("give a commit or --options, one of the two")
    base = compile_options()
    if args.options is None:  # the same options for today's, plus one set to its default: a second graph is made
        today = {**base, "trace.enabled": False}
        steps = [step(args.what, forward_at(args.commit), base), step(args.what, None, today)]
        names = (args.commit, "today", "today / then", "today")
    else:
        steps = [step(args.what, None, base), step(args.what, None, {**base, **args.options})]
        names = ("base", f"with {args.options}", "variant / base", "the variant")
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
