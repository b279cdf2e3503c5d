"""A run's learning curve beside the authors' logged held-out loss: ``python -m anomaly.reporting.curve RUN``.

Reads ``learning_curve.csv`` of a ``train.py`` run made with ``test_every_n_epochs=N`` and prints a Markdown
table: iteration, the authors' held-out loss at that iteration where their log has it (REFERENCE.md section
3a, Ped2), ours, their ratio, and the test AUC / EER of our model there.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from anomaly.reporting.published import AUTHORS_HELDOUT_LOSS

COLUMNS = ["iteration", "authors' held-out loss", "ours", "ours / authors'", "test AUC %", "test EER %"]


def curve_table(rows: list[dict[str, float]], reference: dict[int, float] | None) -> list[list[str]]:
    """One line per scored epoch; the authors' value where their log has an iteration within 1 % of ours."""
    table = []
    for row in rows:
        step, ours = int(row["step"]), float(row["val_loss"])
        theirs = next((loss for it, loss in (reference or {}).items() if abs(it - step) <= 0.01 * it), None)
        table.append([
            f"{step:,}", "-" if theirs is None else f"{theirs:.1f}", f"{ours:.1f}",
            "-" if theirs is None else f"{ours / theirs:.2f}",
            f"{100 * float(row['auc']):.2f}", f"{100 * float(row['eer']):.2f}",
        ])  # fmt: skip
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anomaly.reporting.curve", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a train.py run folder holding learning_curve.csv")
    args = parser.parse_args(argv)
    path = args.run / "learning_curve.csv"
    if not path.is_file():
        print(f"error: {path}: no such file; train with test_every_n_epochs=N to make one", file=sys.stderr)
        return 2
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    config = args.run / ".hydra" / "config.yaml"  # written when the run starts: also for a run still going
    dataset = OmegaConf.select(OmegaConf.load(config), "dataset.name") if config.is_file() else None
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in curve_table(rows, AUTHORS_HELDOUT_LOSS.get(dataset or ""))]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
