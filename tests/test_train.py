"""train.py / eval.py end to end on tiny UCSD-layout data: results, multirun, resume, W&B, bad settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers.config import compose_config
from helpers.entrypoints import FAST, results, run_entry
from hydra.utils import instantiate

from anomaly.hardware import emulated_bf16
from anomaly.model.caffe import write_caffemodel
from anomaly.model.convlstm import EncoderForecaster


def compose_train(*overrides: str):
    return compose_config("train", *overrides)


@pytest.mark.parametrize(("tau", "batch"), [(2, 8), (5, 4), (8, 2), (3, 4)])
def test_batch_size_follows_the_authors_choice_per_tau(tau: int, batch: int) -> None:
    cfg = compose_train(f"tau={tau}")
    assert cfg.batch_size == batch
    assert compose_train(f"tau={tau}", "batch_size=3").batch_size == 3


def test_the_default_recipe_is_the_authors() -> None:
    cfg = compose_train("dataset=ped2")
    assert (cfg.task.name, cfg.tau, cfg.model.lr, cfg.model.weight_decay) == ("prediction", 5, 1e-4, 5e-4)
    assert (cfg.model.init, cfg.model.bias_lr_mult, cfg.trainer.max_epochs) == ("authors", 2, 80)
    assert list(cfg.model.betas) == [0.9, 0.999]
    assert list(cfg.datamodule.strides) == [1, 2, 3]
    assert cfg.scoring.score == "paper" and cfg.scoring.smoothing_sigma == 0
    assert cfg.test_checkpoint == "last"  # the model after the last iteration, as the authors tested


def test_train_then_test_writes_results_checkpoints_and_pictures(tiny: Path) -> None:
    done = run_entry("train.py", ["dataset=ped2", *FAST], tiny)
    assert "AUC" in done.stdout
    [result] = results(tiny)
    assert result["status"] == "ok"
    assert 0 <= result["metrics"]["auc"] <= 1 and 0 <= result["metrics"]["eer"] <= 1
    # prediction, tau=2: the first 2*tau-1 = 3 frames of each test video are not scored
    assert result["metrics"]["frames"] == (14 - 3) + (12 - 3)
    assert [v["frames"][0] for v in result["videos"]] == [3, 3]
    assert result["config"]["tau"] == 2 and result["parameters"] == 848_691
    run = Path(result["_dir"])
    tested = result["tested"]
    assert tested["which"] == "last" and "authors" in tested["why"]
    assert Path(tested["checkpoint"]) == run / "checkpoints" / "last.ckpt" and Path(tested["checkpoint"]).is_file()
    assert {p.name for p in (run / "plots").iterdir()} == {"regularity.png", "roc.png", "error_map.png"}


def test_best_checkpoint_by_held_out_loss_is_an_option(tiny: Path) -> None:
    run_entry("train.py", ["dataset=ped2", *FAST, "test_checkpoint=best"], tiny)
    [result] = results(tiny)
    assert result["tested"]["which"] == "best"
    assert Path(result["tested"]["checkpoint"]).name == "best.ckpt" and result["tested"]["iteration"] > 0


def test_zero_epochs_test_the_untrained_model_and_say_so(tiny: Path) -> None:
    run_entry("train.py", ["dataset=ped2", *FAST, "trainer.max_epochs=0"], tiny)
    [result] = results(tiny)
    assert result["status"] == "ok" and result["tested"]["which"] == "last" and result["tested"]["iteration"] == 0


def test_learning_curve_scores_the_test_set_during_training(tiny: Path) -> None:
    run_entry("train.py", ["dataset=ped2", *FAST, "trainer.max_epochs=2", "test_every_n_epochs=1", "logger=csv"], tiny)
    [result] = results(tiny)
    run = Path(result["_dir"])
    rows = (run / "learning_curve.csv").read_text().splitlines()
    assert rows[0] == "epoch,step,train_loss,val_loss,auc,eer" and len(rows) == 3
    last = dict(zip(rows[0].split(","), rows[-1].split(","), strict=True))
    # observation only: the curve's last point scores the same weights as the final test
    assert float(last["auc"]) == pytest.approx(result["metrics"]["auc"])
    assert result["tested"]["iteration"] == int(last["step"]) > 0  # the tested model's iterations, as in the curve
    assert (run / "plots" / "learning_curve.png").is_file()
    logged = (run / "csv" / "version_0" / "metrics.csv").read_text()
    assert "curve/auc" in logged and "curve/val_loss" in logged


def test_ddp_on_two_cpu_processes_scores_every_window_once(tiny: Path) -> None:
    done = run_entry(
        "train.py",
        [
            "dataset=ped2",
            *FAST,
            "trainer=cpu",
            "trainer.devices=2",
            "+trainer.strategy=ddp",
            "+trainer.limit_train_batches=2",
        ],
        tiny,
    )
    [result] = results(tiny)
    assert result["status"] == "ok"
    # the distributed sampler pads the test windows; each frame is still scored exactly once
    assert result["metrics"]["frames"] == (14 - 3) + (12 - 3)
    assert done.stdout.count("AUC") == 1


def test_options_beyond_the_paper_are_recorded_in_the_protocol(tiny: Path) -> None:
    """Also: a float where conf/ has an int (smoothing_sigma: 0), and Lightning's devices=auto, pass the kind check."""
    options = ["scoring.score=psnr", "scoring.smoothing_sigma=1.5", "scoring.auc=macro", "scoring.save_maps=true"]
    run_entry("train.py", ["dataset=ped2", *FAST, *options, "trainer.devices=auto"], tiny)
    [result] = results(tiny)
    assert result["protocol"] == {"score": "psnr", "smoothing_sigma": 1.5, "auc": "macro", "mask": False,
                                  "normalization": "paper"}  # fmt: skip
    metrics = result["metrics"]
    assert metrics["auc"] == metrics["macro_auc"] and "micro_auc" in metrics
    maps = np.load(Path(result["_dir"]) / "plots" / "maps" / "Test001.npz")
    assert maps["maps"].shape == (14 - 3, 56, 56) and list(maps["frames"]) == list(range(3, 14))


def test_eval_scores_a_checkpoint_of_train(tiny: Path) -> None:
    run_entry("train.py", ["dataset=ped2", *FAST, "test=false"], tiny)
    [trained] = results(tiny)
    checkpoint = trained["tested"]["checkpoint"]
    done = run_entry("eval.py", ["dataset=ped2", "tau=2", "logger=none", f"weights={checkpoint}"], tiny)
    assert "is deprecated" not in done.stdout + done.stderr  # Lightning's use of torch's LeafSpec, not ours
    evaluated = [r for r in results(tiny) if r["kind"] == "eval"][0]
    assert evaluated["status"] == "ok" and evaluated["metrics"]["frames"] == 20
    assert evaluated["weights_sha256"] == hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    wrong = run_entry("eval.py", ["dataset=ped2", "tau=5", "logger=none", f"weights={checkpoint}"], tiny, check=False)
    assert wrong.returncode == 1
    assert "trained with tau=2" in wrong.stderr + wrong.stdout


def test_multirun_gives_each_job_its_folder_results_and_wandb_run_and_reports_failures(tiny: Path) -> None:
    # Three jobs; the one with strides=[0] is invalid and fails without stopping the others.
    done = run_entry(
        "train.py",
        [
            "-m",
            "dataset=ped2",
            *[o for o in FAST if not o.startswith(("tau", "logger"))],
            "logger=wandb",
            "tau=1,2",
            "datamodule.strides=[1,2],[0]",
            "+trainer.limit_train_batches=2",
        ],
        tiny,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    found = results(tiny)
    assert len(found) == 4 and len({r["_dir"] for r in found}) == 4
    assert sorted(r["status"] for r in found) == ["failed", "failed", "ok", "ok"]
    assert all("strides=[0]" in r["error"] for r in found if r["status"] == "failed")
    assert "2 job(s) failed" in done.stderr
    # one offline W&B run per job that started, in the job's own folder, all in the sweep's group (a setting that
    # cannot work is refused before W&B starts)
    runs = list((tiny / "outputs").rglob("offline-run-*"))
    assert sorted(str(run.parents[1]) for run in runs) == sorted(r["_dir"] for r in found if r["status"] == "ok")
    groups = {r["group"] for r in found}
    assert len(groups) == 1
    # nothing on the console that no setting of ours could act on: Lightning's advertisements, wandb's notice
    # about the deprecated setting that Lightning passes
    assert "💡 Tip" not in done.stdout + done.stderr and "anonymous setting" not in done.stdout + done.stderr


def test_a_sweep_through_a_cluster_launcher_gives_each_job_its_folder_and_reports_failures(tiny: Path) -> None:
    """The README's cluster sweep (``hydra/launcher=submitit_slurm``, from the ``cluster`` extra) with submitit's local
    executor, which runs each job as SLURM would: pickled, in a process of its own."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    overrides = ["-m", "hydra/launcher=submitit_local", "dataset=ped2", *FAST, "datamodule.strides=[1,2],[0]"]
    done = run_entry("train.py", overrides, tiny, check=False)
    assert done.returncode == 1, done.stderr[-3000:]
    found = results(tiny)
    assert len(found) == 2 and len({r["_dir"] for r in found}) == 2
    assert sorted(r["status"] for r in found) == ["failed", "ok"]
    assert "Submitit 'local' sweep output dir" in done.stdout + done.stderr
    assert "1 job(s) failed" in done.stderr


def test_two_runs_started_in_the_same_second_never_share_a_folder(tiny: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    overrides = ["dataset=ped2", *FAST, "test=false", "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1"]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: run_entry("train.py", overrides, tiny), range(2)))
    found = results(tiny)
    assert len(found) == 2 and found[0]["_dir"] != found[1]["_dir"]
    assert all(r["status"] == "ok" for r in found)


def test_a_killed_run_resumed_from_its_checkpoint_ends_with_the_same_weights(tiny: Path) -> None:
    common = [
        "dataset=ped2",
        *FAST,
        "trainer.max_epochs=2",
        "test=false",
        "callbacks.last.every_n_train_steps=2",
        "trainer=cpu",
    ]
    run_entry("train.py", [*common, "hydra.run.dir=" + str(tiny / "outputs/whole")], tiny)
    killed = run_entry(
        "train.py",
        [
            *common,
            "hydra.run.dir=" + str(tiny / "outputs/killed"),
            "+callbacks.kill._target_=helpers.killer.KillAfterStep",
            "+callbacks.kill.step=5",
        ],
        tiny,
        check=False,
    )
    assert killed.returncode != 0  # SIGKILL mid-epoch: no results, a last.ckpt from step 4
    last = tiny / "outputs/killed/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4
    run_entry("train.py", [*common, "hydra.run.dir=" + str(tiny / "outputs/resumed"), f"ckpt_path={last}"], tiny)
    whole = torch.load(tiny / "outputs/whole/checkpoints/last.ckpt", weights_only=False)
    resumed = torch.load(tiny / "outputs/resumed/checkpoints/last.ckpt", weights_only=False)
    assert whole["global_step"] == resumed["global_step"] > 5
    for name, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


def test_every_epoch_leaves_a_last_checkpoint_to_resume_from(tiny: Path) -> None:
    """Killed at the start of epoch 2: epoch 1's weights are on disk (not only at the end of training)."""
    killed = run_entry(
        "train.py",
        ["dataset=ped2", *FAST, "trainer.max_epochs=3", "test=false", "hydra.run.dir=outputs/killed",
         "+callbacks.kill._target_=helpers.killer.KillAtEpochStart", "+callbacks.kill.epoch=1"],
        tiny,
        check=False,
    )  # fmt: skip
    assert killed.returncode != 0
    last = torch.load(tiny / "outputs/killed/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tau=0"], "tau must be a positive integer"),
        (["tau=8"], "fewer than one volume of 16 frames"),
        (["dataset.root=/nonexistent/ped2"], "/nonexistent/ped2 does not exist"),
    ],
)
def test_bad_settings_get_clear_errors(tiny: Path, overrides: list[str], message: str) -> None:
    done = run_entry("train.py", ["dataset=ped2", *FAST, *overrides], tiny, check=False)
    assert done.returncode == 1
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unknown_dataset_or_task_is_refused_by_hydra(tiny: Path) -> None:
    for override in ("dataset=nope", "task=nope"):
        done = run_entry("train.py", [override, *FAST], tiny, check=False)
        assert done.returncode == 1 and f"Could not find '{override.replace('=', '/')}'" in done.stderr


def test_eval_never_decodes_the_training_videos(tiny: Path) -> None:
    """A damaged training frame does not block scoring a model: eval only needs the test videos."""
    (tiny / "data/ped2/Train/Train001/001.tif").write_bytes(b"not an image")
    weights = tiny / "random.caffemodel"
    write_caffemodel(EncoderForecaster(), weights)
    run_entry("eval.py", ["dataset=ped2", "tau=2", "logger=none", f"weights={weights}"], tiny)
    [result] = results(tiny)
    assert result["status"] == "ok"
    assert not any("Train" in p.name for p in (tiny / ".cache/frames").iterdir())


def test_the_dataset_is_described_once_per_job(tiny: Path) -> None:
    """fit, the learning curve and test all use the one description of the dataset the loader made."""
    cfg = compose_config("train", "dataset=ped2", f"dataset.root={tiny / 'data/ped2'}", *FAST,
                         f"paths.cache_dir={tiny / 'cache'}")  # fmt: skip
    datamodule = instantiate(cfg.datamodule)
    calls = []
    load = datamodule.load
    datamodule.load = lambda: calls.append(1) or load()
    module = instantiate(cfg.model)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         callbacks=[instantiate(cfg.callbacks.scoring)])  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(["tau=1", "model.compile=true"], id="compiled"),  # tau=1: a small graph, a short compile
        pytest.param(["trainer.precision=bf16-mixed"], id="bf16"),
    ],
)
def test_fast_modes_train_a_few_steps_and_score(tiny: Path, overrides: list[str]) -> None:
    done = run_entry("train.py", ["dataset=ped2", *FAST, "+trainer.limit_train_batches=3", *overrides], tiny)
    [result] = results(tiny)
    assert result["status"] == "ok" and 0 <= result["metrics"]["auc"] <= 1
    assert result["config"]["model"]["compile"] == ("model.compile=true" in overrides)
    bf16 = "trainer.precision=bf16-mixed" in overrides
    assert (result["config"]["trainer"]["precision"] == "bf16-mixed") == bf16
    # a CPU without native bf16 emulates it, slower than fp32: the run says so, and only then
    warned = "trainer.precision=bf16-mixed: " in done.stdout + done.stderr
    assert warned == (bf16 and emulated_bf16(torch.device("cpu")) is not None)


@pytest.mark.parametrize("script", ["train.py", "eval.py", "calibrate.py", "detect.py"])
def test_help_says_what_the_job_is_and_where_its_commands_are(tmp_path: Path, script: str) -> None:
    done = run_entry(script, ["--help"], tmp_path)
    name = script.removesuffix(".py")
    assert done.stdout.startswith(f"{script} of anomaly: video anomaly detection by prediction error"), done.stdout
    assert "The README shows the commands of every job" in done.stdout and f"job: {name}" in done.stdout
    assert not (tmp_path / "outputs").exists()  # --help runs nothing
