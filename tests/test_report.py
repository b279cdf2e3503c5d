"""anomaly.reporting.report: a sweep's results.json files -> the paper's Tables I/II and III (md, csv, W&B)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from anomaly.reporting import curve, published, report
from anomaly.reporting.plots import learning_curve_figure

ROOT = Path(__file__).resolve().parents[1]
PAPER_CELL = "92.84 / 13.25 (paper 92.3 / 14.4; +0.54 / -1.15)"
NOBODY_RAN = {"Ped1": "-", "Ped2": "-", "Avenue": "-", "Subway Entrance": "-", "Subway Exit": "-"}


def write_result(folder: Path, job: str, **fields) -> Path:
    """A results.json as train.py writes it, for Ped2 prediction tau=5 unless ``fields`` say otherwise."""
    data = {
        "status": "ok",
        "kind": "train",
        "dataset": "ped2",
        "task": "prediction",
        "tau": 5,
        "seed": 0,
        "weights": None,
        "checkpoint": f"{job}/checkpoints/best.ckpt",
        "metrics": {"auc": 0.9284, "eer": 0.1325, "frames": 1902, "fps": 42.1},
        "protocol": {"score": "paper", "smoothing_sigma": 0, "auc": "micro", "mask": False},
        "parameters": 848691,
        "device": "cpu (2 threads)",
        "wall_time_s": 12.5,
        "group": "sweep-a",
        "config": {"logger": {"wandb": {"project": "anomaly-test"}}},
    }
    data.update(fields)
    path = folder / job / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def run_report(capsys, *args: str) -> str:
    assert report.main([str(arg) for arg in args]) == 0
    return capsys.readouterr().out


def table_row(text: str, label: str) -> dict[str, str]:
    """The cells of the Tables I/II row whose method is ``label``, by column name."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| Method |"))
    for line in lines:
        if line.startswith(f"| {label} |"):
            names, cells = (row.strip(" |").split(" | ")[1:] for row in (header, line))
            return dict(zip(names, cells, strict=True))
    raise AssertionError(f"no row {label!r} in:\n{text}")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_full_cell_shows_measured_paper_and_difference(tmp_path, capsys):
    write_result(tmp_path, "0")
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5") == {**NOBODY_RAN, "Ped2": PAPER_CELL}
    assert "the paper's protocol" in out


def test_missing_data_and_cells_nobody_ran(tmp_path, capsys):
    write_result(tmp_path, "0")
    write_result(tmp_path, "1", status="missing_data", dataset="avenue", metrics={}, error="no Avenue frames")
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5") == {**NOBODY_RAN, "Ped2": PAPER_CELL, "Avenue": "missing data"}
    assert table_row(out, "Prediction, tau=8") == NOBODY_RAN
    assert "no Avenue frames" in out


def test_seeds_are_shown_as_mean_std_and_n(tmp_path, capsys):
    for seed, (auc, eer) in enumerate([(0.90, 0.10), (0.92, 0.12), (0.94, 0.14)]):
        write_result(tmp_path, str(seed), seed=seed, metrics={"auc": auc, "eer": eer, "fps": 40.0 + seed})
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5")["Ped2"] == (
        "92.00 +- 2.00 / 12.00 +- 2.00 (n=3; paper 92.3 / 14.4; -0.30 / -2.40)"
    )
    (line,) = read_csv(tmp_path / "report.csv")
    assert line["n"] == "3"
    assert float(line["auc_mean"]) == pytest.approx(92.0)
    assert float(line["auc_std"]) == pytest.approx(2.0)
    assert float(line["eer_mean"]) == pytest.approx(12.0)
    assert float(line["diff_eer"]) == pytest.approx(-2.4)
    assert "41.0 +- 1.0" in out  # Table III: frames/s over the three seeds


def test_a_failed_job_is_marked_and_listed_with_its_error(tmp_path, capsys):
    write_result(tmp_path, "0", dataset="ped1", status="failed", metrics={}, error="CUDA out of memory")
    write_result(tmp_path, "1")
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5") == {**NOBODY_RAN, "Ped1": "failed", "Ped2": PAPER_CELL}
    failed = out.split("Failed jobs:")[1]
    assert str(tmp_path / "0" / "results.json") in failed
    assert "CUDA out of memory" in failed


def test_an_eval_sweep_gives_each_weights_file_its_own_row(tmp_path, capsys):
    for job, (weights, auc, eer) in enumerate(
        [
            ("models/ped2_aug2.caffemodel", 0.9284, 0.1325),
            ("models/ped2_aug1_epoch80.caffemodel", 0.9236, 0.1416),
        ]
    ):
        write_result(tmp_path, str(job), kind="eval", weights=weights, metrics={"auc": auc, "eer": eer})
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5 [ped2_aug2.caffemodel]")["Ped2"] == PAPER_CELL
    assert table_row(out, "Prediction, tau=5 [ped2_aug1_epoch80.caffemodel]")["Ped2"] == (
        "92.36 / 14.16 (paper 92.3 / 14.4; +0.06 / -0.24)"
    )
    assert table_row(out, "Prediction, tau=5")["Ped2"] == "-"


def test_the_csv_holds_one_parseable_line_per_cell(tmp_path, capsys):
    write_result(tmp_path, "0")
    write_result(tmp_path, "1", task="reconstruction", metrics={"auc": 0.88, "eer": 0.16})
    write_result(tmp_path, "2", dataset="synthetic", metrics={"auc": 0.5, "eer": 0.5})
    run_report(capsys, tmp_path, "--out", tmp_path / "out" / "tables")
    lines = read_csv(tmp_path / "out" / "tables.csv")
    assert [(line["method"], line["dataset"]) for line in lines] == [
        ("Reconstruction, tau=5", "ped2"),
        ("Prediction, tau=5", "ped2"),
        ("Prediction, tau=5", "synthetic"),
    ]
    ped2 = lines[1]
    assert (float(ped2["auc_mean"]), float(ped2["eer_mean"])) == (pytest.approx(92.84), pytest.approx(13.25))
    assert (float(ped2["paper_auc"]), float(ped2["paper_eer"])) == (92.3, 14.4)
    assert float(ped2["diff_auc"]) == pytest.approx(0.54)
    assert ped2["status"] == "ok" and ped2["n"] == "1" and ped2["auc_std"] == ""
    assert lines[0]["paper_auc"] == "87.5"
    assert lines[2]["paper_auc"] == "" and lines[2]["cell"] == "50.00 / 50.00"


def test_the_markdown_file_is_written_and_no_temporary_file_is_left(tmp_path, capsys):
    write_result(tmp_path, "0")
    out = run_report(capsys, tmp_path)
    written = (tmp_path / "report.md").read_text()
    assert PAPER_CELL in written and written in out
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "report.csv",
        "report.md",
        "report_speed.csv",
    ]


def test_rows_and_columns_follow_the_paper_and_avenue_tau_is_a_footnote(tmp_path, capsys):
    write_result(tmp_path, "a", tau=8)
    write_result(tmp_path, "b", tau=2, dataset="avenue")
    write_result(tmp_path, "c", task="reconstruction", dataset="synthetic")
    write_result(tmp_path, "d", tau=3, dataset="ped1")
    masked = {"score": "paper", "smoothing_sigma": 0, "auc": "micro", "mask": True}
    write_result(tmp_path, "e", dataset="subway_exit", protocol=masked)
    out = run_report(capsys, tmp_path)
    assert "| Method | Ped1 | Ped2 | Avenue | Subway Entrance | Subway Exit | synthetic |" in out
    tables_i_ii = out.split("Note:")[0].splitlines()
    labels = [line.split(" | ")[0][2:] for line in tables_i_ii if line.startswith("| ") and "tau=" in line]
    assert labels == [
        "Reconstruction, tau=5",
        "Prediction, tau=2",
        "Prediction, tau=5",
        "Prediction, tau=8",
        "Prediction, tau=3",
    ]
    assert table_row(out, "Prediction, tau=2")["Avenue"] == "92.84 / 13.25"  # no published tau=2 value
    assert table_row(out, "Prediction, tau=5")["Subway Exit"].endswith("(paper 95 / 8; -2.16 / +5.25)")
    assert "83.2 / 23.2" in out and "shown for neither" in out


def test_a_non_default_protocol_gets_its_own_row_and_is_named_in_the_caption(tmp_path, capsys):
    write_result(tmp_path, "0")
    write_result(tmp_path, "1", protocol={"score": "psnr", "smoothing_sigma": 2, "auc": "micro", "mask": False})
    out = run_report(capsys, tmp_path)
    assert table_row(out, "Prediction, tau=5")["Ped2"] == PAPER_CELL
    assert table_row(out, "Prediction, tau=5 {score=psnr, smoothing sigma=2}")["Ped2"] == PAPER_CELL
    caption = next(line for line in out.splitlines() if line.startswith("Protocol:"))
    assert "score=psnr, smoothing sigma=2" in caption


def test_the_subway_time_stamp_mask_is_the_papers_protocol_there():
    assert published.protocol_label({"mask": True}, "subway_exit") == ""
    assert published.protocol_label({"mask": False}, "subway_exit") == "no time-stamp mask"
    assert published.protocol_label({"mask": True, "auc": "macro"}, "ped2") == "time-stamp mask, macro AUC"


def test_table_iii_shows_parameters_speed_and_device_beside_the_paper(tmp_path, capsys):
    write_result(tmp_path, "0")
    write_result(tmp_path, "1", device="NVIDIA H100 80GB HBM3", metrics={"auc": 0.9, "eer": 0.1, "fps": 900.0})
    out = run_report(capsys, tmp_path)
    speed = out.split("Table III")[1]
    assert "| paper | all | 0.85M | 75 | GeForce GTX TITAN X |  |" in speed
    assert "| Ped2 | Prediction, tau=5 | 848,691 | 42.1 | cpu (2 threads) | 1 |" in speed
    assert "| Ped2 | Prediction, tau=5 | 848,691 | 900.0 | NVIDIA H100 80GB HBM3 | 1 |" in speed


def test_several_folders_are_read_and_an_unreadable_file_is_a_failed_job(tmp_path, capsys):
    write_result(tmp_path / "sweep1", "0", metrics={"auc": 0.90, "eer": 0.10})
    write_result(tmp_path / "sweep2", "0", metrics={"auc": 0.94, "eer": 0.14})
    (tmp_path / "sweep2" / "1").mkdir()
    (tmp_path / "sweep2" / "1" / "results.json").write_text("{truncated")
    out = run_report(capsys, tmp_path / "sweep1", tmp_path / "sweep2", tmp_path / "sweep1")
    assert table_row(out, "Prediction, tau=5")["Ped2"].startswith("92.00 +- 2.83 / 12.00 +- 2.83 (n=2;")
    assert "unreadable results.json" in out.split("Failed jobs:")[1]
    assert (tmp_path / "sweep1" / "report.md").exists()


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anomaly.reporting", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_prints_the_table(tmp_path):
    write_result(tmp_path, "multirun/2026-11-25/10-00-00-123456/0")
    done = cli(tmp_path / "multirun")
    assert done.returncode == 0, done.stderr
    assert PAPER_CELL in done.stdout
    assert (tmp_path / "multirun" / "report.csv").exists()


def test_a_folder_without_results_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    write_result(tmp_path / "full", "0")
    done = cli(tmp_path / "full", tmp_path / "empty")
    assert done.returncode != 0
    assert str(tmp_path / "empty") in done.stderr and "no results.json" in done.stderr
    assert not (tmp_path / "full" / "report.md").exists()


def test_a_results_file_given_for_a_folder_names_its_folder(tmp_path):
    result = write_result(tmp_path, "run")
    done = cli(result)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{result}: a file, not a folder; give the run or sweep folder ({result.parent})" in done.stderr


def test_wandb_logs_an_offline_report_run(tmp_path):
    write_result(tmp_path / "sweep", "0")
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    done = cli(tmp_path / "sweep", "--wandb", env=env)
    assert done.returncode == 0, done.stderr
    runs = list((tmp_path / "sweep" / "wandb").glob("offline-run-*"))  # beside the report, not in the working folder
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
    tables = {path.name.split("_0_")[0]: path for path in runs[0].glob("files/media/table/*.table.json")}
    assert sorted(tables) == ["table_III", "tables_I_II", "tables_I_II_cells"]
    assert PAPER_CELL in json.loads(tables["tables_I_II"].read_text())["data"][2]


def test_without_credentials_wandb_goes_offline(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert report.wandb_mode() == "offline"
    # credentials, but the server does not answer (no network here; 127.0.0.1:9 refuses at once)
    (tmp_path / "netrc").write_text("machine 127.0.0.1\n  login user\n  password secret\n")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    assert report.wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert report.wandb_mode() == "disabled"  # an explicit choice is kept


def test_a_nan_metric_in_a_cell_of_several_results_is_a_failed_result_not_a_crash(tmp_path: Path, capsys) -> None:
    write_result(tmp_path, "0")
    write_result(tmp_path, "1", metrics={"auc": float("nan"), "eer": 0.2, "frames": 1902})
    text = run_report(capsys, tmp_path)
    assert table_row(text, "Prediction, tau=5")["Ped2"] == "92.84 / 13.25 (paper 92.3 / 14.4; +0.54 / -1.15; 1 failed)"
    assert "no finite metrics.auc and metrics.eer (found {'auc': nan" in text


# --- learning curves: python -m anomaly.reporting.curve ---------------------------------------------------


def write_curve(run: Path, seed: int, points: list[tuple[int, float, float, float]]) -> Path:
    """A run folder as train.py leaves it: learning_curve.csv (step, loss, AUC, EER) and .hydra/config.yaml."""
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(f"seed: {seed}\ndataset:\n  name: ped2\n")
    lines = ["epoch,step,train_loss,val_loss,auc,eer"]
    lines += [f"{i + 1},{step},0.0,{loss},{auc},{eer}" for i, (step, loss, auc, eer) in enumerate(points)]
    (run / "learning_curve.csv").write_text("\n".join(lines) + "\n")
    return run


def test_one_curve_is_shown_beside_the_authors_loss_every_kth_epoch_and_the_last(tmp_path, capsys):
    run = write_curve(tmp_path / "a", 0, [(1500 * i, 100.0 / i, 0.8, 0.2) for i in range(1, 6)])
    assert curve.main([str(run), "--every", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 3,000", "| 6,000", "| 7,500"]
    assert lines[2].split(" | ")[1:4] == ["84.0", "50.0", "0.60"]  # the authors logged 84.0 at 3,000


def test_several_curves_are_compared_with_the_first_at_the_iterations_all_scored(tmp_path, capsys):
    first = write_curve(tmp_path / "a", 0, [(10, 10.0, 0.80, 0.20), (20, 8.0, 0.90, 0.10), (30, 6.0, 0.9, 0.1)])
    second = write_curve(tmp_path / "b", 1, [(10, 11.0, 0.82, 0.20), (20, 10.0, 0.85, 0.14)])
    assert curve.main([str(first), str(second), "--plot", str(tmp_path / "plots" / "seeds.png")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "plots" / "seeds.png").stat().st_size > 10_000 and "wrote" in out
    assert "| 20 | 8.0 | 10.0 | 90.00 / 10.00 | 85.00 / 14.00 |" in out and "| 30 |" not in out
    assert "seed 1 against seed 0 at the 2 iterations both scored (10 to 20)" in out
    assert "held-out loss +10.0 to +25.0 % (higher at 2)" in out
    assert "test AUC -5.00 to +2.00 points (lower at 1, mean -1.50)" in out
    assert "EER +0.00 to +4.00 points (mean +2.00)" in out
    assert "At 20 iterations, mean +- std of the 2 runs: test AUC % 87.50 +- 3.54" in out
    third = write_curve(tmp_path / "c", 2, [(10, 12.0, 0.84, 0.20), (20, 9.0, 0.95, 0.05)])
    assert curve.main([str(first), str(second), str(third)]) == 0
    out = capsys.readouterr().out
    assert "seed 2 against seed 0 at the 2 iterations all 3 scored" in out and "mean +- std of the 3 runs" in out
    # AUC 90, 85, 95: 90 +- t(0.975, 2 dof) = 4.3027 x std 5 / sqrt(3) = 12.42 (textbook quantile); one more
    # run's: 90 +- 4.3027 x 5 x sqrt(1 + 1/3) = 24.84
    assert "95 % t-interval of the mean: test AUC % 77.58 to 102.42, EER % -1.53 to 20.87;" in out
    assert "of one more run's (prediction interval): test AUC % 65.16 to 114.84, EER %" in out


def test_the_paper_s_auc_and_eer_are_drawn_only_where_the_run_scored_as_the_paper(tmp_path):
    run = write_curve(tmp_path / "a", 0, [(10, 10.0, 0.80, 0.20)])
    scoring = "task:\n  name: prediction\ntau: 5\nscoring:\n  score: paper\n  smoothing_sigma: {}\n  auc: micro\n"
    with open(run / ".hydra" / "config.yaml", "a") as config:
        config.write(scoring.format(0))
    reference, paper = curve.references(run)
    assert reference[3000] == 84.0 and paper == (92.3, 14.4)  # Table I, Ped2
    figure = learning_curve_figure({"seed 0": curve.read_rows(run)}, reference, paper)
    drawn = {line.get_label(): set(line.get_ydata()) for ax in figure.axes[1:] for line in ax.get_lines()}
    assert drawn["paper, Table I/II: 92.3"] == {92.3} and drawn["paper, Table I/II: 14.4"] == {14.4}
    plt.close(figure)
    head = "seed: 0\ndataset:\n  name: ped2\n"
    (run / ".hydra" / "config.yaml").write_text(head + scoring.format(2))
    assert curve.references(run)[1] is None  # smoothed scores are not the paper's
    (run / ".hydra" / "config.yaml").write_text(head + scoring.format(0).replace("tau: 5", "tau: 3"))
    assert curve.references(run)[1] is None  # the paper has no tau=3
    subway = "dataset:\n  name: subway_exit\n  mask: {}\n" + scoring.format(0)
    (run / ".hydra" / "config.yaml").write_text(subway.format("[[0, 0, 40, 20]]"))
    assert curve.references(run)[1] == (95.0, 8.0)  # Table I, with the authors' time-stamp mask
    (run / ".hydra" / "config.yaml").write_text(subway.format("[]"))
    assert curve.references(run)[1] is None  # unmasked Subway scores are not the paper's


def test_a_run_without_a_curve_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert curve.main([str(tmp_path / "run")]) == 2
    assert "learning_curve.csv: no such file; train with test_every_n_epochs=N" in capsys.readouterr().err


def test_a_curve_file_given_for_its_run_names_the_run_folder(tmp_path, capsys):
    table = write_curve(tmp_path / "run", 0, [(1499, 64.0, 0.8, 0.28)]) / "learning_curve.csv"
    assert curve.main([str(table)]) == 2
    assert f"{table}: a file, not a folder; give the run folder ({tmp_path / 'run'})" in capsys.readouterr().err
