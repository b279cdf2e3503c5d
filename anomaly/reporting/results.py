"""The ``results.json`` that every job writes, and reading it back for reports.

One file per job (train or eval) in its run folder: ``status`` (``ok``, ``failed``, ``missing_data``),
``error``, ``kind``, ``dataset``, ``task``, ``tau``, ``seed``, ``group``, ``weights``, ``protocol``,
``metrics`` (``auc``, ``eer`` as fractions, ``frames``, ``fps``, ...), ``parameters``, ``device``,
``checkpoint``, ``videos`` (per-video scored frames, errors, regularity, labels), ``wall_time_s`` and the
resolved ``config``. Written atomically, so a killed job never leaves half a file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomaly.atomic import write_atomic
from anomaly.errors import ReportError
from anomaly.reporting.published import protocol_label

RowKey = tuple[str, int, str, str]  # (task, tau, weights file name or "", protocol label or "")


def write_results(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=1, default=float))


@dataclass(frozen=True)
class Result:
    """One job's results.json, reduced to what the tables need (AUC and EER in %)."""

    path: str
    status: str  # "ok", "failed" or "missing_data"
    error: str
    dataset: str | None
    task: str | None
    tau: int | None
    weights: str  # file name of the evaluated weights (eval results only), else ""
    protocol: str  # "" for the paper's protocol, else what differs, e.g. "score=psnr"
    auc: float | None
    eer: float | None
    fps: float | None
    parameters: int | None
    device: str
    group: str | None
    project: str | None
    operating_point: dict[str, float] | None = None  # the calibrated protocol's alarm threshold, when scored so

    @property
    def row(self) -> RowKey | None:
        if self.task is None or self.tau is None or self.dataset is None:
            return None
        return (self.task, self.tau, self.weights, self.protocol)


def find_results(dirs: Sequence[str | Path]) -> list[Path]:
    """All results.json files under ``dirs``, each once; every folder must hold at least one."""
    found: dict[Path, Path] = {}
    for folder in map(Path, dirs):
        if folder.is_file():
            raise ReportError(f"{folder}: a file, not a folder; give the run or sweep folder ({folder.parent})")
        if not folder.is_dir():
            raise ReportError(f"{folder}: no such folder")
        paths = sorted(folder.rglob("results.json"))
        if not paths:
            raise ReportError(f"{folder}: no results.json found under it (expected one per job)")
        for path in paths:
            found.setdefault(path.resolve(), path)
    return list(found.values())


def load_result(path: Path) -> Result:
    """Read one results.json; an unreadable file becomes a failed result naming why."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        data = {"status": "failed", "error": f"unreadable results.json: {err}"}
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    dataset = data.get("dataset") or _nested(config, "dataset", "name")
    task = data.get("task") or _nested(config, "task") or _nested(config, "model", "task")
    tau = _integer(data.get("tau", _nested(config, "tau") or _nested(config, "model", "tau")))
    status, error = str(data.get("status", "ok")), str(data.get("error") or "")
    auc, eer = _percent(metrics.get("auc")), _percent(metrics.get("eer"))
    if status == "ok" and (auc is None or eer is None):
        found = {key: metrics.get(key) for key in ("auc", "eer")}
        status, error = "failed", error or f"status ok but no finite metrics.auc and metrics.eer (found {found})"
    if status == "ok" and not (dataset and task and tau is not None):
        status, error = "failed", "status ok but no dataset, task or tau: cannot place it in the table"
    weights = data.get("weights") if data.get("kind") == "eval" else None
    return Result(
        path=str(path),
        status=status,
        error=error,
        dataset=str(dataset) if dataset else None,
        task=str(task).lower() if task else None,
        tau=tau,
        weights=Path(str(weights)).name if weights else "",
        protocol=protocol_label(data.get("protocol") or {}, dataset),
        auc=auc,
        eer=eer,
        fps=_number(metrics.get("fps")),
        parameters=int(data["parameters"]) if isinstance(data.get("parameters"), int) else None,
        device=str(data.get("device") or "unknown device"),
        group=data.get("group") or None,
        project=_find_project(config),
        operating_point=_operating_point(metrics, config),
    )


OPERATING_POINT = ("op_tpr", "op_fpr", "false_alarms_per_minute", "events_detected", "events_total",
                   "median_delay_frames")  # fmt: skip


def _operating_point(metrics: dict[str, Any], config: dict[str, Any]) -> dict[str, float] | None:
    if "op_tpr" not in metrics:
        return None
    point = {key: _number(metrics.get(key)) for key in OPERATING_POINT}
    return point | {"false_alarm_rate": _number(_nested(config, "alarm", "false_alarm_rate"))}


def _nested(config: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(config, dict):
            return None
        config = config.get(key)  # type: ignore[assignment]
    return config if not isinstance(config, dict) else None


def _find_project(config: Any, in_logger: bool = False) -> str | None:
    """The W&B project named in the logger section of a resolved config (``logger.wandb.project``...)."""
    if not isinstance(config, dict):
        return None
    if in_logger and isinstance(config.get("project"), str):
        return config["project"]
    for key, value in config.items():
        found = _find_project(value, in_logger or "logger" in str(key) or "wandb" in str(key))
        if found:
            return found
    return None


def _number(value: Any) -> float | None:
    """A finite number, or None (missing, not a number, NaN or infinite)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _percent(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else 100.0 * number
