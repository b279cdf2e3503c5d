"""Aggregate a sweep's ``results.json`` files into the paper's Tables I/II (AUC / EER) and III (speed).

Usage::

    python -m anomaly.reporting multirun/2026-11-25/10-00-00-123456 [more folders] [--out PREFIX] [--wandb]

Every ``results.json`` under the folders (one per Hydra job) is read. A cell of Tables I/II is keyed by
(task, tau, weights file for eval results, protocol when not the paper's) x dataset; several results in a
cell (seeds) are shown as mean +- sample std with their count n, beside the paper's value and the
difference (measured - paper), all in %. The tables are printed and written to ``PREFIX.md``,
``PREFIX.csv`` (one line per cell) and ``PREFIX_speed.csv`` (Table III); the default prefix is
``<first folder>/report``. ``--wandb`` logs them to a summary run of the sweep's group.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anomaly.atomic import write_atomic
from anomaly.errors import ReportError
from anomaly.jobs.tracking import wandb_mode
from anomaly.reporting.published import (
    PAPER_PROTOCOL_TEXT,
    UNCERTAIN_NOTE,
)
from anomaly.reporting.results import Result, find_results, load_result
from anomaly.reporting.tables import (
    CELL_LEGEND,
    CSV_COLUMNS,
    OPERATING_COLUMNS,
    SPEED_COLUMNS,
    csv_rows,
    operating_rows,
    row_label,
    speed_rows,
    wide_table,
)


def render_markdown(results: Sequence[Result]) -> str:
    """Tables I/II, their caption and footnote, failed jobs, and Table III, as Markdown."""
    header, rows = wide_table(results)
    protocols = sorted({r.protocol for r in results if r.protocol and r.row is not None})
    lines = ["## Tables I/II: frame-level AUC / EER (%)", "", _caption(protocols), ""]
    lines += _markdown_table(header, rows) + ["", f"Note: {UNCERTAIN_NOTE}"]
    failed = [r for r in results if r.status not in ("ok", "missing_data")]
    missing = [r for r in results if r.status == "missing_data"]
    for title, listed in (("Failed jobs", failed), ("Jobs without data", missing)):
        if listed:
            lines += ["", f"{title}:", ""]
            lines += [f"- {_job_label(r)}: {r.error or '(no error message)'}" for r in listed]
    operating = operating_rows(results)
    if operating:
        lines += ["", "## Operating points of the calibrated alarm threshold (scoring.normalization=calibrated)", ""]
        lines += [
            "The threshold is set on normal video only, for the target false-alarm rate; frame-level TPR and",
            "FPR of its alarms, false alarms per minute of normal test video, ground-truth events caught.",
            "",
        ]
        lines += _markdown_table(OPERATING_COLUMNS, operating)
    lines += ["", "## Table III: model size and test speed", ""]
    lines += _markdown_table(SPEED_COLUMNS, [[str(value) for value in row] for row in speed_rows(results)])
    return "\n".join(lines) + "\n"


def log_wandb(results: Sequence[Result], folder: Path, project: str | None = None) -> str:
    """Log Tables I/II (as printed and per cell) and III to a ``job_type="report"`` run, kept in ``folder/wandb``
    (beside the report); its folder."""
    import wandb

    groups = sorted({r.group for r in results if r.group})
    group = "+".join(groups)[:120] or "report"
    project = project or next((r.project for r in results if r.project), None)
    project = project or os.environ.get("WANDB_PROJECT") or "anomaly"
    header, rows = wide_table(results)
    speed = speed_rows(results)
    run = wandb.init(
        project=project,
        group=group,
        job_type="report",
        name=f"report-{group}",
        mode=wandb_mode(),
        dir=folder,
        config={"results": len(results)},
    )
    try:
        run.log({
            "tables_I_II": wandb.Table(columns=header, data=rows),
            "tables_I_II_cells": wandb.Table(columns=CSV_COLUMNS, data=csv_rows(results)),
            "table_III": wandb.Table(columns=SPEED_COLUMNS, data=[list(map(str, row)) for row in speed]),
        })  # fmt: skip
        return str(run.dir)
    finally:
        run.finish()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anomaly.reporting", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="folders to search for results.json (e.g. a multirun folder)")
    parser.add_argument("--out", help="output prefix for PREFIX.md / PREFIX.csv (default: DIR/report)")
    parser.add_argument("--wandb", action="store_true", help="log the tables to a W&B summary run")
    parser.add_argument("--project", help="W&B project (default: from the results' config, else 'anomaly')")
    args = parser.parse_args(argv)
    try:
        results = [load_result(path) for path in find_results(args.dirs)]
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    markdown = render_markdown(results)
    prefix = Path(args.out) if args.out else Path(args.dirs[0]) / "report"
    write_atomic(prefix.with_name(prefix.name + ".md"), markdown)
    write_atomic(prefix.with_name(prefix.name + ".csv"), _csv_text(CSV_COLUMNS, csv_rows(results)))
    write_atomic(prefix.with_name(prefix.name + "_speed.csv"), _csv_text(SPEED_COLUMNS, speed_rows(results)))
    print(markdown)
    print(f"Wrote {prefix}.md, {prefix}.csv and {prefix}_speed.csv ({len(results)} results)")
    if args.wandb:
        print(f"W&B run: {log_wandb(results, prefix.parent, args.project)}")
    return 0


def _caption(protocols: list[str]) -> str:
    paper = f"the paper's protocol ({PAPER_PROTOCOL_TEXT})"
    if not protocols:
        return f"Protocol: {paper}. {CELL_LEGEND}"
    others = "; ".join(protocols)
    return f"Protocol: {paper}, except rows tagged {{...}}: {others}. {CELL_LEGEND}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|"] + [line(row) for row in rows]


def _job_label(result: Result) -> str:
    where = ", ".join(str(part) for part in (result.dataset, result.row and row_label(result.row)) if part)
    return f"{result.path}" + (f" ({where})" if where else "")


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return buffer.getvalue()
