"""Every command of the README, run as written, from a fresh copy of the project, in README order.

The copy holds what a clone holds (the tracked files), ``../shared`` beside it when this checkout has one,
and a tiny Ped2 in ``data/ped2`` where a user would put the real one. Nothing points the outputs elsewhere:
``<run>`` and ``<sweep>`` are replaced by the folder the previous command made, as a user would do. A command
that cannot run here says why in ``COMMANDS``; a README command missing from ``COMMANDS`` fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from helpers.datasets import MODELS, PED2, SHARED, make_ucsd_original
from helpers.entrypoints import ROOT, user_environment

README = ROOT / "README.md"
HAS_SHARED = PED2.is_dir() and (MODELS / "ped2_aug2.caffemodel").is_file()
NO_SHARED = f"real Ped2 and the authors' models not found at {SHARED} (../shared beside the project)"


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```bash blocks: continuation lines joined, trailing comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                commands.append(re.sub(r"\s+", " ", command))
    return commands


# --- what each command must do ---------------------------------------------------------------------------


def latest(project: Path, job: str, kind: str = "runs") -> Path:
    return sorted((project / "outputs" / job / kind).iterdir())[-1]


def last_result(project: Path, job: str, kind: str = "runs") -> dict:
    return json.loads((latest(project, job, kind) / "results.json").read_text())


def sweep_results(project: Path, job: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in latest(project, job, "multirun").glob("*/results.json")]


def ok(job: str) -> Callable[[Path, subprocess.CompletedProcess], None]:
    def check(project: Path, done: subprocess.CompletedProcess) -> None:
        result = last_result(project, job)
        assert result["status"] == "ok", result.get("error")

    return check


def trained_and_tested(project: Path, done: subprocess.CompletedProcess) -> None:
    result = last_result(project, "train")
    assert result["status"] == "ok" and result["tested"]["which"] == "last"
    assert "calibration" in result and 0 <= result["metrics"]["auc"] <= 1


def synthetic(project: Path, done: subprocess.CompletedProcess) -> None:
    trained_and_tested(project, done)
    result = last_result(project, "train")
    assert result["dataset"] == "synthetic" and result["metrics"]["auc"] > 0.9  # its anomalies are plain to see
    assert {p.name for p in (latest(project, "train") / "plots").iterdir()} >= {"regularity.png", "roc.png"}


def with_curve(project: Path, done: subprocess.CompletedProcess) -> None:
    trained_and_tested(project, done)
    rows = (latest(project, "train") / "learning_curve.csv").read_text().splitlines()
    assert len(rows) == 1 + 80 // 10


def sweep(jobs: int, job: str = "train") -> Callable[[Path, subprocess.CompletedProcess], None]:
    def check(project: Path, done: subprocess.CompletedProcess) -> None:
        found = sweep_results(project, job)
        assert len(found) == jobs and all(r["status"] in ("ok", "missing_data") for r in found)
        assert f"python -m anomaly.reporting {latest(project, job, 'multirun').relative_to(project)}" in done.stdout

    return check


def table2_smoke(project: Path, done: subprocess.CompletedProcess) -> None:
    sweep(12)(project, done)
    found = sweep_results(project, "train")
    assert {(r["dataset"], r["status"]) for r in found} == {("ped1", "missing_data"), ("ped2", "ok"),
                                                            ("avenue", "missing_data")}  # fmt: skip


def authors_models(project: Path, done: subprocess.CompletedProcess) -> None:
    found = sweep_results(project, "eval")
    assert len(found) == 5 and {r["status"] for r in found} == {"missing_data"}  # no models in ./models


# REFERENCE.md section 6: what the authors' Ped2 models give with the paper's protocol on these frames; a
# faithful implementation reproduces them within 0.2 (AUC) and 0.3 (EER) points.
EXPECTED = {"ped2_aug2.caffemodel": (92.84, 13.25), "ped2_aug1_epoch80.caffemodel": (92.36, 14.16)}


def reproduces_table_1(project: Path, done: subprocess.CompletedProcess) -> None:
    found = {Path(r["weights"]).name: r for r in sweep_results(project, "eval")}
    assert set(found) == set(EXPECTED)
    for name, (auc, eer) in EXPECTED.items():
        metrics = found[name]["metrics"]
        assert metrics["frames"] == 2010 - 12 * 9  # 12 test videos, the first 2*tau-1 frames unscored
        assert abs(100 * metrics["auc"] - auc) <= 0.2, (name, metrics)
        assert abs(100 * metrics["eer"] - eer) <= 0.3, (name, metrics)


def reports_table_1(project: Path, done: subprocess.CompletedProcess) -> None:
    for result in sweep_results(project, "eval"):
        auc, eer = 100 * result["metrics"]["auc"], 100 * result["metrics"]["eer"]
        assert f"{auc:.2f} / {eer:.2f} (paper 92.3 / 14.4" in done.stdout


def curve_table(project: Path, done: subprocess.CompletedProcess) -> None:
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| iteration | authors' held-out loss | ours |") and len(lines) == 2 + 80 // 10


def curves_compared(project: Path, done: subprocess.CompletedProcess) -> None:
    """Here every placeholder is the one tiny run: the table has its 8 epochs thinned, nothing differs."""
    table = done.stdout.split("\n\n")[0].splitlines()
    assert table[0].startswith("| iteration | ") and len(table) == 2 + 8 // 4  # epochs 40 and 80 of 10, 20, ...
    assert done.stdout.count("test AUC +0.00 to +0.00 points (lower at 0, mean +0.00)") == 3  # seeds 1-3 vs 0
    assert "mean +- std of the 4 runs" in done.stdout
    assert (project / "outputs" / "ped2_seeds.png").stat().st_size > 10_000


def reports(project: Path, done: subprocess.CompletedProcess) -> None:
    assert "## Tables I/II" in done.stdout and "## Table III" in done.stdout


def calibrated(project: Path, done: subprocess.CompletedProcess) -> None:
    result = last_result(project, "calibrate")
    assert result["status"] == "ok" and result["calibration"]["windows"] == 2550 - 16 * 9  # all training windows
    assert (project / "outputs/ped2_aug2.calibration.json").is_file()


def detects_the_anomaly_of_test_video_01(project: Path, done: subprocess.CompletedProcess) -> None:
    """And the same on test video 01 written as a video file, as a user's video would come."""
    abnormal = (61 - 1, 180 - 1)  # UCSDped2.m: frames 61-180 (1-based) of test video 01
    for run in [latest(project, "detect"), _detect_avi(project)]:
        assert len((run / "scores.csv").read_text().splitlines()) == 1 + 180  # one row per frame
        events = json.loads((run / "events.json").read_text())["events"]
        assert any(e["start_frame"] <= abnormal[1] and e["end_frame"] >= abnormal[0] for e in events), events


def _detect_avi(project: Path) -> Path:
    video = project / "ped2_test01.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (360, 240))
    for path in sorted((PED2 / "testing/frames/01").glob("*.jpg")):
        writer.write(cv2.imread(str(path)))
    writer.release()
    command = ("python detect.py source=ped2_test01.avi weights=../shared/models/ped2_aug2.caffemodel "
               "calibration=outputs/ped2_aug2.calibration.json")  # fmt: skip
    run(project, command)
    return latest(project, "detect")


def evaluated_calibrated(project: Path, done: subprocess.CompletedProcess) -> None:
    metrics = last_result(project, "eval")["metrics"]
    assert 0.5 < metrics["auc"] <= 1 and metrics["events_total"] == 12  # one abnormal event per Ped2 test video
    assert 0 <= metrics["op_fpr"] <= 1 and metrics["false_alarms_per_minute"] >= 0
    assert "calibrated threshold: frame TPR" in done.stdout


def benchmarked(project: Path, done: subprocess.CompletedProcess) -> None:
    figures = json.loads((project / "bench.json").read_text())
    [mode] = figures["modes"]
    assert mode["name"] == "eager fp32" and 0 < mode["train_fraction_of_peak"] < 1.5
    # each fraction is of the peak measured again beside the mode's own runs, and that peak is recorded
    for kind in ("train", "test"):
        assert mode[f"{kind}_peak_gflops"] > 0
        assert mode[f"{kind}_fraction_of_peak"] == pytest.approx(mode[f"{kind}_gflops"] / mode[f"{kind}_peak_gflops"])
    assert figures["peak_gflops"]["fp32"] > 0 and figures["flops"]["train_volume"] > 1e9
    assert figures["memory_gb_per_s"] > 0
    # the network runs all of its convolutions and more: it cannot beat them timed alone (timing noise aside)
    alone = figures["convolutions_alone"]["fp32"]
    assert mode["train_volumes_per_s"] < 1.2 * alone["train_volumes_per_s"]
    assert mode["test_frames_per_s"] < 1.2 * alone["test_frames_per_s"]


SYNC = "needs W&B's servers (no network here); its paths cover every offline run: test_the_readme_syncs_every_run"
SLOW_SWEEP = "6 jobs x 80 epochs: far too long for a test; the same sweep with budget=smoke, next line, runs"
COMMANDS: dict[str, Callable[[Path, subprocess.CompletedProcess], None] | str] = {
    "make train": "the same job as `python train.py`, which runs below; `make` adds the install `make test` did",
    "make test": "this is the test suite",
    "python train.py": synthetic,
    "python train.py dataset=ped2 task=prediction tau=5": trained_and_tested,
    "python train.py dataset=ped2 test_every_n_epochs=10": with_curve,
    "python train.py -m dataset=ped2 tau=2,5,8 task=prediction,reconstruction": SLOW_SWEEP,
    "python train.py -m dataset=ped2 tau=2,5,8 task=prediction,reconstruction budget=smoke": sweep(6),
    "python train.py dataset=ped2 ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt": trained_and_tested,
    "python train.py trainer=ddp trainer.devices=4 dataset=avenue": "needs 4 GPUs (DDP is tested on 2 CPU processes)",
    "wandb sync outputs/*/runs/*/wandb/offline-run-*": SYNC,
    "wandb sync outputs/*/multirun/*/*/wandb/offline-run-*": SYNC,
    "python eval.py dataset=ped2 weights=outputs/train/runs/<run>/checkpoints/last.ckpt": ok("eval"),
    "ANOMALY_DATA=../shared/data python calibrate.py dataset=ped2 weights=../shared/models/ped2_aug2.caffemodel "
    "out=outputs/ped2_aug2.calibration.json": calibrated,
    "python detect.py source=../shared/data/ped2/testing/frames/01 fps=10 "
    "weights=../shared/models/ped2_aug2.caffemodel calibration=outputs/ped2_aug2.calibration.json":
    detects_the_anomaly_of_test_video_01,
    "ANOMALY_DATA=../shared/data python eval.py dataset=ped2 weights=../shared/models/ped2_aug2.caffemodel "
    "scoring.normalization=calibrated calibration=outputs/ped2_aug2.calibration.json": evaluated_calibrated,
    "ANOMALY_DATA=../shared/data python eval.py -m dataset=ped2 weights=../shared/models/ped2_aug2.caffemodel,"
    "../shared/models/ped2_aug1_epoch80.caffemodel": reproduces_table_1,
    "python -m anomaly.reporting outputs/eval/multirun/<sweep>": reports_table_1,
    "python eval.py -m experiment=authors_models": authors_models,
    "python train.py -m experiment=table1": "5 jobs x 80 epochs; the smoke sweeps run the same machinery",
    "python train.py -m experiment=table2": "12 jobs x 80 epochs; the same sweep with budget=smoke, next line, runs",
    "python train.py -m experiment=table2 budget=smoke": table2_smoke,
    "python -m anomaly.reporting outputs/train/multirun/<sweep>": reports,
    "make report DIRS=outputs/train/multirun/<sweep>": reports,
    "ANOMALY_DATA=../shared/data python train.py dataset=ped2 model.compile=true test_every_n_epochs=1 logger=csv":
    "80 epochs of real Ped2: hours; a learning curve runs on tiny data above, a compiled run in test_train.py",
    "python -m anomaly.reporting.curve outputs/train/runs/<run>": curve_table,
    "ANOMALY_DATA=../shared/data python train.py dataset=ped2 model.compile=true test_every_n_epochs=1 logger=csv "
    "trainer.precision=bf16-mixed seed=1": "80 epochs of real Ped2 in bf16: hours; a bf16 run is in test_train.py",
    "ANOMALY_DATA=../shared/data python train.py dataset=ped2 model.compile=true test_every_n_epochs=1 logger=csv "
    "trainer.precision=bf16-mixed seed=2": "80 epochs of real Ped2 in bf16: hours; a bf16 run is in test_train.py",
    "ANOMALY_DATA=../shared/data python train.py dataset=ped2 model.compile=true test_every_n_epochs=1 logger=csv "
    "trainer.precision=bf16-mixed seed=3": "80 epochs of real Ped2 in bf16: hours; a bf16 run is in test_train.py",
    "python -m anomaly.reporting.curve outputs/train/runs/<seed 0 run> outputs/train/runs/<seed 1 run> "
    "outputs/train/runs/<seed 2 run> outputs/train/runs/<seed 3 run> --every 4 --plot outputs/ped2_seeds.png":
    curves_compared,
    "make bench": "minutes of compiling and timing every mode; the eager fp32 benchmark, next line, runs",
    'python -m anomaly.bench --modes "eager fp32" --steps 3 --json bench.json': benchmarked,
}  # fmt: skip
NEEDS_SHARED = ("../shared",)


def test_every_readme_command_is_known() -> None:
    commands = readme_commands(README.read_text())
    assert [c for c in commands if c not in COMMANDS] == []
    assert [c for c in COMMANDS if c not in commands] == []  # and nothing here that the README no longer shows


def section_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_readme_link_to_a_section_finds_it() -> None:
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)  # a '# comment' in a block is no heading
    anchors = {section_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert "reproducing-the-paper" in links and sorted(links - anchors) == []


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the project (what a clone holds), ../shared beside it, tiny Ped2 in data/ped2."""
    work = tmp_path_factory.mktemp("fresh")
    copy = work / "project"
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    for name in tracked:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")  # installed: `make` finds its stamp newer than pyproject.toml
    if SHARED.is_dir():
        (work / "shared").symlink_to(SHARED)
    # The smallest Ped2 that every command can use: 16 frames, one volume of tau=8 (one video held out).
    make_ucsd_original(copy / "data" / "ped2", train_frames=(16, 16), test_frames=(16, 16), size=(24, 16),
                       gt=[[(9, 16)], [(3, 8)]])  # fmt: skip
    return copy


RUN = r"outputs/train/runs/<[^>]*>"  # <run>, <seed 0 run>, ...


def run(project: Path, command: str) -> subprocess.CompletedProcess:
    """Run ``command`` in ``project`` as a user would, ``<run>``/``<sweep>`` replaced by the latest fitting one."""
    if re.search(RUN, command):  # the latest run that holds what the command reads (for every <...> run)
        needed = "learning_curve.csv" if "anomaly.reporting.curve" in command else "checkpoints/last.ckpt"
        runs = [r for r in sorted((project / "outputs/train/runs").iterdir()) if (r / needed).exists()]
        command = re.sub(RUN, str(runs[-1].relative_to(project)), command)
    for placeholder, job in (("outputs/eval/multirun/<sweep>", "eval"), ("outputs/train/multirun/<sweep>", "train")):
        if placeholder in command:
            command = command.replace(placeholder, str(latest(project, job, "multirun").relative_to(project)))
    environment = user_environment(project)
    environment["PATH"] = f"{project / '.venv' / 'bin'}:{environment['PATH']}"
    done = subprocess.run(["bash", "-c", command], cwd=project, env=environment, capture_output=True, text=True,
                          timeout=1200)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.parametrize("command", list(COMMANDS))
def test_readme_command(project: Path, command: str) -> None:
    check = COMMANDS[command]
    if isinstance(check, str):
        pytest.skip(check)
    if any(marker in command for marker in NEEDS_SHARED) and not HAS_SHARED:
        pytest.skip(NO_SHARED)
    check(project, run(project, command))


def test_the_readme_syncs_every_run(project: Path) -> None:
    """After the README's commands (above, in the same project), its ``wandb sync`` paths match every offline W&B
    run they wrote: single runs and the jobs of sweeps (a sync once matched train.py's single runs only)."""
    patterns = [
        word for c in readme_commands(README.read_text()) if c.startswith("wandb sync ") for word in c.split()[2:]
    ]
    synced = {path for pattern in patterns for path in project.glob(pattern)}
    written = set(project.glob("outputs/**/offline-run-*"))
    assert any("multirun" in str(path) for path in written) and any("/runs/" in str(path) for path in written)
    assert sorted(written - synced) == []
