"""Every dataset family through train.py: the real loaders on tiny data in each on-disk format, a few
training steps, and the paper's scoring (or, without ground truth, scores and plots only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.entrypoints import FAST, results, run_entry
from helpers.video_datasets import make_avenue_frames, make_avenue_original, make_folder_dataset, make_subway

STEPS = [*FAST, "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1"]


def _avenue_original(data: Path) -> list[str]:
    make_avenue_original(data / "avenue")
    return ["dataset=avenue"]


def _avenue_frames(data: Path) -> list[str]:
    make_avenue_frames(data / "avenue")
    return ["dataset=avenue"]


def _subway(data: Path) -> list[str]:
    root = make_subway(data / "subway_entrance")  # 150 frames at 10 fps, abnormal 70-79 and 121-130
    video = root / "subway_entrance_turnstiles.avi"
    return [
        "dataset=subway_entrance",
        f"dataset.video={video}",
        "dataset.train_minutes=0.1",
        "dataset.segment_frames=45",
    ]


def _folder_with_csv(data: Path) -> list[str]:
    make_folder_dataset(data / "folder", ["video,start,end", "evening,10,20", "cam3,12,18"])
    return ["dataset=folder", f"dataset.ground_truth={data / 'folder' / 'abnormal.csv'}"]


@pytest.mark.parametrize("make", [_avenue_original, _avenue_frames, _subway, _folder_with_csv])
def test_train_and_score_end_to_end(tmp_path: Path, make) -> None:
    overrides = make(tmp_path / "data")
    done = run_entry("train.py", [*overrides, *STEPS], tmp_path)
    [result] = results(tmp_path)
    assert result["status"] == "ok", result.get("error")
    assert "AUC" in done.stdout and 0 <= result["metrics"]["auc"] <= 1
    assert all(len(v["regularity"]) == len(v["labels"]) > 0 for v in result["videos"])


def test_subway_masks_the_time_stamp_by_default(tmp_path: Path) -> None:
    overrides = _subway(tmp_path / "data")
    run_entry("train.py", [*overrides, *STEPS], tmp_path)
    [result] = results(tmp_path)
    assert result["protocol"]["mask"] is True
    assert result["config"]["model"]["mask"] == [[181, 193, 81, 114], [166, 193, 126, 215]]


def test_own_videos_without_ground_truth_still_get_scores_and_plots(tmp_path: Path) -> None:
    make_folder_dataset(tmp_path / "data" / "folder")
    done = run_entry("train.py", ["dataset=folder", *STEPS], tmp_path)
    [result] = results(tmp_path)
    assert result["status"] == "ok" and "auc" not in result["metrics"]
    assert "no AUC/EER" in done.stdout + done.stderr
    assert sorted(v["name"] for v in result["videos"]) == ["cam3", "evening"]
    assert all(set(v["labels"]) == {-1} for v in result["videos"])
    assert (Path(result["_dir"]) / "plots" / "regularity.png").is_file()
