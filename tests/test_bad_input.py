"""What a user can get wrong ends in a clear message (the file or setting, and how to fix it), a
``results.json`` with ``status: failed``, and never a traceback, a dead process, code run from a file, or a
silently wrong number. Each case here once did one of those."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from helpers.entrypoints import FAST, results, run_entry

from anomaly.model.caffe import write_caffemodel
from anomaly.model.convlstm import EncoderForecaster


def refused(tmp: Path, script: str, overrides: list[str], message: str, env: dict[str, str] | None = None) -> dict:
    """Run a command that must fail with ``message`` and no traceback; its results.json."""
    done = run_entry(script, overrides, tmp, env=env, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert message in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    [result] = [r for r in results(tmp) if r["status"] != "ok"]
    assert result["status"] == "failed" and message in result["error"]
    return result


def trained_checkpoint(tmp: Path) -> str:
    run_entry("train.py", ["dataset=ped2", *FAST, "test=false", "hydra.run.dir=outputs/trained"], tmp)
    return str(tmp / "outputs/trained/checkpoints/last.ckpt")


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tiny: Path) -> None:
    marker = tiny / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tiny / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"tau": 2, "task": "prediction"}, "x": Payload()}, evil)
    refused(tiny, "eval.py", ["dataset=ped2", "tau=2", f"weights={evil}"], "refused: this file holds Python objects")
    refused_again = run_entry("train.py", ["dataset=ped2", *FAST, f"ckpt_path={evil}"], tiny, check=False)
    output = refused_again.stdout + refused_again.stderr
    assert refused_again.returncode == 1 and "refused: this file holds Python objects" in output
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "empty or cut short)"), (b"hello\n", "KeyError: ")],  # what torch.load raised
)
def test_a_file_that_is_no_checkpoint_is_named(tiny: Path, content: bytes, why: str) -> None:
    (tiny / "w.ckpt").write_bytes(content)
    message = f"w.ckpt: not a checkpoint of train.py nor a .caffemodel ({why}"  # once: "(101)", or "()"
    refused(tiny, "eval.py", ["dataset=ped2", "weights=w.ckpt"], message)


def test_weights_with_nan_are_refused_not_scored(tiny: Path) -> None:
    net = EncoderForecaster()
    with torch.no_grad():
        net.encode_lstm2.peephole[0, 3, 3] = float("nan")
    weights = tiny / "nan.caffemodel"
    write_caffemodel(net, weights)
    refused(tiny, "eval.py", ["dataset=ped2", f"weights={weights}"], "weights with NaN or inf values")


def test_a_checkpoint_of_another_task_is_refused_for_eval_and_for_resuming(tiny: Path) -> None:
    checkpoint = trained_checkpoint(tiny)  # tau=2, prediction
    message = "was trained with tau=2 task=prediction, but this run has tau=5 task=reconstruction"
    refused(tiny, "train.py", ["dataset=ped2", "task=reconstruction", "tau=5", f"ckpt_path={checkpoint}"], message)
    evaluated = run_entry(
        "eval.py", ["dataset=ped2", "task=reconstruction", f"weights={checkpoint}"], tiny, check=False
    )
    assert evaluated.returncode == 1 and message in evaluated.stdout + evaluated.stderr


def test_a_checkpoint_of_another_model_is_refused(tiny: Path) -> None:
    other = tiny / "other.ckpt"
    torch.save(
        {"state_dict": {"net.fc.weight": torch.zeros(3)}, "hyper_parameters": {"tau": 2, "task": "prediction"}}, other
    )
    refused(tiny, "eval.py", ["dataset=ped2", "tau=2", f"weights={other}"], "not weights of this network")


@pytest.mark.parametrize(
    ("script", "overrides", "message"),
    [
        ("train.py", ["trainer.max_epochs=-5"], "a trainer setting: `max_epochs` must be a non-negative integer"),
        ("eval.py", [], "weights is not set: give weights=VALUE"),
        ("train.py", ["test_every_n_epochs=-1"], "test_every_n_epochs=-1: must be an integer >= 0"),
        ("train.py", ["batch_size=0"], "batch_size=0: must be a whole number >= 1"),
    ],
)
def test_bad_settings_are_named(tiny: Path, script: str, overrides: list[str], message: str) -> None:
    base = ["dataset=ped2", *FAST] if script == "train.py" else ["dataset=ped2"]
    refused(tiny, script, [*base, *overrides], message)


@pytest.mark.parametrize(
    ("script", "overrides", "message"),
    [
        ("eval.py", ["weights=data"], "weights=data: a folder, not a file (give a .caffemodel or a .ckpt"),
        ("train.py", ["ckpt_path=data"], "data: a folder, not a file (give a .ckpt of train.py"),
    ],
)
def test_a_folder_given_as_weights_is_named(tiny: Path, script: str, overrides: list[str], message: str) -> None:
    done = run_entry(script, ["dataset=ped2", *overrides], tiny, check=False)
    assert done.returncode == 1 and message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["test_checkpoint=worst"], "test_checkpoint='worst': expected 'last'"),  # once: after the whole training
        (["test_checkpoint=best", "datamodule.val_fraction=0"], "test_checkpoint=best needs held-out data"),
        (["model.compile=maybe"], "model.compile='maybe': expected true or false"),  # once: taken as true
        (["test=no"], "test='no': expected true or false"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs='abc': expected a number"),  # once: failed in epoch 1
        (["datamodule.strides=3"], "datamodule.strides=3: expected a list"),
        (["datamodule.strides=[1.5]"], "datamodule.strides=[1.5]: need one or more positive temporal strides"),
        (["seed=-1"], "seed=-1: must be a whole number from 0 to 4294967295"),  # once: numpy's ValueError
        (["seed=1.5"], "seed=1.5: must be a whole number"),
        (["model.betas=[0.9,1.5]"], "model.betas=[0.9, 1.5]: Adam's betas are two numbers in [0, 1)"),
        (["trainer.precision=fp8"], "a trainer setting: Precision 'fp8' is invalid"),
        (["scoring.normalization=calibrated", "calibrate=false"], "normalization=calibrated tests against the calib"),
        (["scoring.save_maps=true", "trainer.devices=2"], "scoring.save_maps=true needs a single device"),
    ],
)
def test_bad_settings_are_refused_before_training(tiny: Path, overrides: list[str], message: str) -> None:
    result = refused(tiny, "train.py", ["dataset=ped2", *FAST, *overrides], message)
    assert not (Path(result["_dir"]) / "checkpoints").exists()


def test_a_cache_folder_that_cannot_be_made_is_named(tiny: Path) -> None:
    blocker = tiny / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    env = {"ANOMALY_CACHE": str(blocker / "frames")}
    refused(
        tiny, "train.py", ["dataset=ped2", *FAST], f"cannot create the frame cache folder {blocker / 'frames'}", env
    )


def test_a_data_folder_where_the_synthetic_set_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {"ANOMALY_DATA": str(blocker / "data")}
    refused(tmp_path, "train.py", [*FAST], "cannot write the synthetic dataset into", env)


def test_a_frame_that_is_a_symlink_loop_is_named(tiny: Path) -> None:
    folder = tiny / "data/ped2/Test/Test001"
    (folder / "015.tif").symlink_to(folder / "016.tif")
    (folder / "016.tif").symlink_to(folder / "015.tif")
    result = refused(tiny, "train.py", ["dataset=ped2", *FAST], "015.tif: cannot read this file")
    assert "replace or remove it" in result["error"]


def test_results_of_a_failed_job_hold_the_message_and_the_config(tiny: Path) -> None:
    result = refused(tiny, "train.py", ["dataset=ped2", *FAST, "trainer.max_epochs=-5"], "max_epochs")
    assert result["config"]["trainer"]["max_epochs"] == -5
    json.dumps(result)  # a plain JSON document
