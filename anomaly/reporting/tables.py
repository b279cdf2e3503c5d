"""The cells and rows of the report: Tables I/II (AUC / EER beside the paper's), Table III (size and speed) and
the operating points of calibrated evaluations, from the results of jobs (``anomaly.reporting.results``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import scipy.stats

from anomaly.reporting.published import (
    PAPER_DATASETS,
    PAPER_DEVICE,
    PAPER_FPS,
    PAPER_PARAMETERS,
    PAPER_ROWS,
    paper_scores,
)
from anomaly.reporting.results import Result, RowKey


@dataclass(frozen=True)
class Cell:
    """The results of one (row, dataset) cell."""

    row: RowKey
    dataset: str
    auc: list[float]
    eer: list[float]
    failed: int
    missing: int

    @property
    def status(self) -> str:
        return "ok" if self.auc else "failed" if self.failed else "missing_data"

    @property
    def paper(self) -> tuple[float, float] | None:
        return paper_scores(*self.row[:2], self.dataset)


def make_cells(results: Sequence[Result]) -> list[Cell]:
    """Group results by (row, dataset), rows and datasets in the paper's order, others after them."""
    groups: dict[tuple[RowKey, str], list[Result]] = {}
    for result in results:
        if result.row is not None:
            groups.setdefault((result.row, str(result.dataset)), []).append(result)
    cells = [
        Cell(
            row=row,
            dataset=dataset,
            auc=[r.auc for r in members if r.status == "ok" and r.auc is not None],
            eer=[r.eer for r in members if r.status == "ok" and r.eer is not None],
            failed=sum(r.status not in ("ok", "missing_data") for r in members),
            missing=sum(r.status == "missing_data" for r in members),
        )
        for (row, dataset), members in groups.items()
    ]
    return sorted(cells, key=lambda c: (_row_order(c.row), _dataset_order(c.dataset)))


def format_cell(cell: Cell) -> str:
    """E.g. ``92.84 / 13.25 (paper 92.3 / 14.4; +0.54 / -1.15)``; ``failed``; ``missing data``."""
    notes = [f"{count} {what}" for count, what in ((cell.failed, "failed"), (cell.missing, "missing data"))]
    notes = [note for note in notes if not note.startswith("0 ")]
    if not cell.auc:
        return "failed" if cell.failed else "missing data"
    n = len(cell.auc)
    text = f"{mean_std(cell.auc)} / {mean_std(cell.eer)}"
    extra = [f"n={n}"] if n > 1 else []
    if cell.paper is not None:
        auc, eer = cell.paper
        extra.append(f"paper {auc:g} / {eer:g}")
        diff_eer = f"{statistics.fmean(cell.eer) - eer:+.2f}" if cell.eer else "-"
        extra.append(f"{statistics.fmean(cell.auc) - auc:+.2f} / {diff_eer}")
    extra += notes
    return f"{text} ({'; '.join(extra)})" if extra else text


def row_label(row: RowKey) -> str:
    """E.g. ``Prediction, tau=5 [ped2_aug2.caffemodel] {score=psnr}``."""
    task, tau, weights, protocol = row
    label = f"{task.capitalize()}, tau={tau}"
    label += f" [{weights}]" if weights else ""
    return label + (f" {{{protocol}}}" if protocol else "")


OPERATING_COLUMNS = ["Dataset", "Method", "Target rate", "TPR %", "FPR %", "False alarms/min", "Events caught",
                     "Median delay (frames)"]  # fmt: skip


def operating_rows(results: Sequence[Result]) -> list[list[str]]:
    """One row per result scored with the calibrated protocol (Operating points)."""
    rows = []
    for r in results:
        point = r.operating_point
        if r.status != "ok" or point is None or r.row is None:
            continue
        rows.append([
            PAPER_DATASETS.get(str(r.dataset), str(r.dataset)), row_label(r.row), _fmt(point["false_alarm_rate"], "g"),
            _fmt(_times(point["op_tpr"], 100), ".1f"), _fmt(_times(point["op_fpr"], 100), ".1f"),
            _fmt(point["false_alarms_per_minute"], ".2f"),
            f"{_fmt(point['events_detected'], '.0f')}/{_fmt(point['events_total'], '.0f')}",
            _fmt(point["median_delay_frames"], "g"),
        ])  # fmt: skip
    return rows


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def wide_table(results: Sequence[Result]) -> tuple[list[str], list[list[str]]]:
    """Tables I/II as printed: the paper's rows and columns, then any other seen; "-" where nobody ran."""
    cells = make_cells(results)
    datasets = sorted(set(PAPER_DATASETS) | {cell.dataset for cell in cells}, key=_dataset_order)
    keys = {(task, tau, "", "") for task, tau in PAPER_ROWS} | {cell.row for cell in cells}
    by_key = {(cell.row, cell.dataset): cell for cell in cells}
    rows = [
        [row_label(row)] + [format_cell(by_key[row, d]) if (row, d) in by_key else "-" for d in datasets]
        for row in sorted(keys, key=_row_order)
    ]
    return ["Method"] + [PAPER_DATASETS.get(d, d) for d in datasets], rows


CSV_COLUMNS = [
    "method", "task", "tau", "weights", "protocol", "dataset", "status", "n", "failed", "missing_data",
    "auc_mean", "auc_std", "eer_mean", "eer_std", "paper_auc", "paper_eer", "diff_auc", "diff_eer", "cell",
]  # fmt: skip
CELL_LEGEND = "Cells: measured (paper; measured - paper), mean +- sample std over n results when n > 1."
SPEED_COLUMNS = ["Dataset", "Method", "Parameters", "Frames/s", "Device", "n"]


def csv_rows(results: Sequence[Result]) -> list[list[Any]]:
    """One line per cell of Tables I/II, in %, numbers rounded to 4 decimals; "" where none."""
    rows = []
    for cell in make_cells(results):
        task, tau, weights, protocol = cell.row
        paper_auc, paper_eer = cell.paper or (None, None)
        auc_mean, eer_mean = _mean(cell.auc), _mean(cell.eer)
        rows.append([
            row_label(cell.row), task, tau, weights, protocol, cell.dataset, cell.status, len(cell.auc),
            cell.failed, cell.missing, auc_mean, _std(cell.auc), eer_mean, _std(cell.eer), paper_auc,
            paper_eer, _diff(auc_mean, paper_auc), _diff(eer_mean, paper_eer), format_cell(cell),
        ])  # fmt: skip
    return [[_round(value) for value in row] for row in rows]


def speed_rows(results: Sequence[Result]) -> list[list[Any]]:
    """Table III: the paper's line, then one per (dataset, task, tau, device) of the successful results."""
    rows: list[list[Any]] = [["paper", "all", f"{PAPER_PARAMETERS / 1e6:g}M", f"{PAPER_FPS:g}", PAPER_DEVICE, ""]]
    groups: dict[tuple[str, RowKey, str], list[Result]] = {}
    for r in results:
        if r.status == "ok" and r.row is not None:
            method: RowKey = (
                r.row[0],
                r.row[1],
                "",
                "",
            )  # size and speed depend on neither weights nor protocol
            groups.setdefault((str(r.dataset), method, r.device), []).append(r)
    for dataset, method, device in sorted(groups, key=lambda k: (_dataset_order(k[0]), _row_order(k[1]), k[2])):
        members = groups[dataset, method, device]
        counts = sorted({r.parameters for r in members if r.parameters is not None})
        fps = [r.fps for r in members if r.fps is not None]
        parameters = ", ".join(f"{count:,}" for count in counts) or "-"
        name = PAPER_DATASETS.get(dataset, dataset)
        rows.append([name, row_label(method), parameters, mean_std(fps, decimals=1), device, len(members)])
    return rows


def _row_order(row: RowKey) -> tuple[Any, ...]:
    base = row[:2]
    rank = PAPER_ROWS.index(base) if base in PAPER_ROWS else len(PAPER_ROWS)
    return (rank, base, row[2], row[3])


def _dataset_order(dataset: str) -> tuple[int, str]:
    names = list(PAPER_DATASETS)
    return (names.index(dataset), "") if dataset in names else (len(names), dataset)


def mean_std(values: Sequence[float], decimals: int = 2) -> str:
    """``mean +- sample std``; one value as it is, none as ``-``."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{decimals}f}"
    return f"{statistics.fmean(values):.{decimals}f} +- {statistics.stdev(values):.{decimals}f}"


def mean_interval(values: Sequence[float], level: float = 0.95, one_more: bool = False) -> tuple[float, float]:
    """Student's t interval of the mean of two or more values (seeds of one recipe, say); with ``one_more``, the
    prediction interval of one more value drawn alike (one more seed's run, say)."""
    spread = math.sqrt(1 / len(values) + (1 if one_more else 0))
    half = scipy.stats.t.ppf((1 + level) / 2, len(values) - 1) * statistics.stdev(values) * spread
    return statistics.fmean(values) - float(half), statistics.fmean(values) + float(half)


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _diff(measured: float | None, paper: float | None) -> float | None:
    return None if measured is None or paper is None else measured - paper


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
