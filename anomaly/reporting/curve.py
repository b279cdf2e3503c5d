"""Learning curves of ``train.py`` runs: ``python -m anomaly.reporting.curve RUN [RUN ...] [--every K]``.

Reads ``learning_curve.csv`` of runs made with ``test_every_n_epochs=N``. One run: a Markdown table of
iteration, the authors' held-out loss at that iteration where their log has it (REFERENCE.md section 3a,
Ped2), ours, their ratio, and the test AUC / EER of our model there. Several runs (seeds of one recipe, say):
their curves side by side at the iterations all of them scored, then how each run differs from the first
epoch by epoch (range and mean), and the mean +- std of all runs at the last shared iteration with the
Student t 95 % interval of their mean AUC and EER.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from anomaly.reporting.plots import learning_curve_figure, write_figure
from anomaly.reporting.published import AUTHORS_HELDOUT_LOSS, paper_scores
from anomaly.reporting.tables import mean_interval, mean_std

COLUMNS = ["iteration", "authors' held-out loss", "ours", "ours / authors'", "test AUC %", "test EER %"]
Rows = list[dict[str, float]]  # learning_curve.csv: epoch, step, train_loss, val_loss, auc, eer (AUC/EER as fractions)
Curve = dict[int, dict[str, float]]  # iteration -> held-out loss, AUC %, EER %


class CurveError(ValueError):
    """A run folder without a readable learning curve."""


def read_rows(run: Path) -> Rows:
    if run.is_file():
        raise CurveError(f"{run}: a file, not a folder; give the run folder ({run.parent})")
    path = run / "learning_curve.csv"
    if not path.is_file():
        raise CurveError(f"{path}: no such file; train with test_every_n_epochs=N to make one")
    with open(path, newline="") as handle:
        try:
            rows = [{key: float(row[key]) for key in ("step", "train_loss", "val_loss", "auc", "eer")}
                    for row in csv.DictReader(handle)]  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise CurveError(f"{path}: not a learning curve written by train.py ({error!r})") from error
    return rows


def as_curve(rows: Rows) -> Curve:
    return {int(r["step"]): {"loss": r["val_loss"], "auc": 100 * r["auc"], "eer": 100 * r["eer"]} for r in rows}


def run_config(run: Path, key: str) -> object:
    config = run / ".hydra" / "config.yaml"  # written when the run starts: also for a run still going
    return OmegaConf.select(OmegaConf.load(config), key) if config.is_file() else None


def references(run: Path) -> tuple[dict[int, float] | None, tuple[float, float] | None]:
    """The authors' held-out loss by iteration for the run's dataset, and the paper's AUC / EER % for its
    dataset, task and tau where the run scored as the paper did (None where either is not known)."""
    dataset = str(run_config(run, "dataset.name"))
    scoring = {key: run_config(run, f"scoring.{key}") for key in ("score", "smoothing_sigma", "auc")}
    scoring["mask"] = bool(run_config(run, "dataset.mask"))  # Subway's time-stamp mask is the paper's there
    task, tau = str(run_config(run, "task.name")), run_config(run, "tau")
    return AUTHORS_HELDOUT_LOSS.get(dataset), paper_scores(task, tau, dataset, scoring)  # type: ignore[arg-type]


def thinned(steps: list[int], every: int) -> list[int]:
    """Every ``every``-th scored iteration (the ``every``-th, the 2 x ``every``-th, ...) and the last."""
    kept = steps[every - 1 :: every]
    return kept + steps[-1:] if steps and (not kept or kept[-1] != steps[-1]) else kept


def curve_table(curve: Curve, reference: dict[int, float] | None, every: int = 1) -> list[list[str]]:
    """One line per scored epoch; the authors' value where their log has an iteration within 1 % of ours."""
    table = []
    for step in thinned(sorted(curve), every):
        ours = curve[step]["loss"]
        theirs = next((loss for it, loss in (reference or {}).items() if abs(it - step) <= 0.01 * it), None)
        table.append([
            f"{step:,}", "-" if theirs is None else f"{theirs:.1f}", f"{ours:.1f}",
            "-" if theirs is None else f"{ours / theirs:.2f}",
            f"{curve[step]['auc']:.2f}", f"{curve[step]['eer']:.2f}",
        ])  # fmt: skip
    return table


def comparison_table(curves: list[Curve], labels: list[str], every: int = 1) -> list[list[str]]:
    """Header and lines: the runs' held-out losses, then their test AUC / EER, at the iterations all scored."""
    shared = sorted(set.intersection(*(set(curve) for curve in curves)))
    header = ["iteration"] + [f"{label} held-out loss" for label in labels]
    header += [f"{label} test AUC / EER %" for label in labels]
    lines = [header]
    for step in thinned(shared, every):
        points = [curve[step] for curve in curves]
        lines.append([f"{step:,}"] + [f"{p['loss']:.1f}" for p in points]
                     + [f"{p['auc']:.2f} / {p['eer']:.2f}" for p in points])  # fmt: skip
    return lines


def comparison_summary(curves: list[Curve], labels: list[str]) -> list[str]:
    """Each run against the first, epoch by epoch; all runs at the last iteration they share."""
    shared = sorted(set.intersection(*(set(curve) for curve in curves)))
    if not shared:
        return ["The runs share no scored iteration."]
    first, lines = curves[0], []
    scored = "both scored" if len(curves) == 2 else f"all {len(curves)} scored"
    for curve, label in zip(curves[1:], labels[1:], strict=True):
        loss = [100 * (curve[s]["loss"] / first[s]["loss"] - 1) for s in shared]
        auc = [curve[s]["auc"] - first[s]["auc"] for s in shared]
        eer = [curve[s]["eer"] - first[s]["eer"] for s in shared]
        lines.append(
            f"{label} against {labels[0]} at the {len(shared)} iterations {scored} ({shared[0]:,} to "
            f"{shared[-1]:,}): held-out loss {min(loss):+.1f} to {max(loss):+.1f} % (higher at "
            f"{sum(x > 0 for x in loss)}); test AUC {min(auc):+.2f} to {max(auc):+.2f} points (lower at "
            f"{sum(x < 0 for x in auc)}, mean {statistics.fmean(auc):+.2f}); EER {min(eer):+.2f} to "
            f"{max(eer):+.2f} points (mean {statistics.fmean(eer):+.2f})."
        )
    last = {key: [curve[shared[-1]][key] for curve in curves] for key in ("auc", "eer", "loss")}
    names = {"auc": "test AUC %", "eer": "EER %", "loss": "held-out loss"}
    spread = ", ".join(f"{names[key]} {mean_std(values)}" for key, values in last.items())
    intervals = [
        ", ".join(
            "{} {:.2f} to {:.2f}".format(names[key], *mean_interval(last[key], one_more=one)) for key in ("auc", "eer")
        )
        for one in (False, True)
    ]
    lines.append(f"At {shared[-1]:,} iterations, mean +- std of the {len(curves)} runs: {spread}; 95 % t-interval "
                 f"of the mean: {intervals[0]}; of one more run's (prediction interval): {intervals[1]}.")  # fmt: skip
    return lines


def markdown(lines: list[list[str]]) -> list[str]:
    """A header line and rows as a Markdown table."""
    rows = ["| " + " | ".join(cells) + " |" for cells in lines]
    return [rows[0], "|" + "---|" * len(lines[0]), *rows[1:]]


def labels_of(runs: list[Path]) -> list[str]:
    """``seed N`` where the runs' seeds tell them apart, else their folder names."""
    seeds = [run_config(run, "seed") for run in runs]
    if None in seeds or len(set(seeds)) < len(seeds):
        return [run.name for run in runs]
    return [f"seed {seed}" for seed in seeds]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anomaly.reporting.curve", description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="train.py run folders holding "
                        "learning_curve.csv; several are compared with the first")  # fmt: skip
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="show every K-th scored iteration and the last (default: all)")  # fmt: skip
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw the runs' curves into this picture")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error(f"--every {args.every}: give a whole number of at least 1")
    try:
        runs = [read_rows(run) for run in args.runs]
    except CurveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reference, paper = references(args.runs[0])
    curves, labels = [as_curve(rows) for rows in runs], labels_of(args.runs)
    if len(curves) == 1:
        print("\n".join(markdown([COLUMNS, *curve_table(curves[0], reference, args.every)])))
    else:
        print("\n".join(markdown(comparison_table(curves, labels, args.every))))
        print("\n" + "\n".join(comparison_summary(curves, labels)))
    if args.plot:
        write_figure(learning_curve_figure(dict(zip(labels, runs, strict=True)), reference, paper), args.plot)
        print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
