"""load_ucsd on both UCSD layouts (the original archive and the frames layout), on tiny generated datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import PED2, frame_pattern, make_ucsd_frames, make_ucsd_original

from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.errors import DataError

GT = [[(3, 8)], [(1, 2), (5, 6)]]  # for the default test videos of 8 and 6 frames


def labels(dataset) -> list[list[int]]:
    return [video.labels.tolist() for video in dataset.test]


# --- the original archive ----------------------------------------------------------------------------------


def test_original_layout(tmp_path: Path) -> None:
    root = make_ucsd_original(tmp_path / "UCSDped2", "ped2", train_frames=(6, 5, 7), test_frames=(8, 6), gt=GT)
    dataset = load_ucsd(root, "ped2")
    assert dataset.name == "ped2"
    assert dataset.root == root
    assert [v.name for v in dataset.train] == ["Train001", "Train002", "Train003"]
    assert [len(v) for v in dataset.train] == [6, 5, 7]
    assert all(v.labels is None for v in dataset.train)
    assert [v.name for v in dataset.test] == ["Test001", "Test002"]  # not Test001_gt, Test002_gt
    assert [len(v) for v in dataset.test] == [8, 6]  # not the ._001.tif junk
    assert labels(dataset) == [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1]]


def test_original_layout_frames_are_read_in_order_without_junk(tmp_path: Path) -> None:
    size = (12, 12)
    root = make_ucsd_original(tmp_path / "UCSDped2", "ped2", test_frames=(3,), gt=[[(1, 1)]], size=size)
    video = load_ucsd(root, "ped2").test[0]
    frames = list(video.frames(12))  # the frames are already 12x12: no resize, so the values are exact
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        assert np.array_equal(frame, frame_pattern(1, index, size))


@pytest.mark.parametrize("inside", ["UCSDped2", "UCSD_Anomaly_Dataset.v1p2/UCSDped2"])
def test_original_archive_found_below_the_root(tmp_path: Path, inside: str) -> None:
    make_ucsd_original(tmp_path / inside, "ped2", gt=GT)
    dataset = load_ucsd(tmp_path, "ped2")
    assert dataset.root == tmp_path / inside
    assert [v.name for v in dataset.test] == ["Test001", "Test002"]
    assert labels(dataset) == [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1]]


def test_original_layout_of_another_name(tmp_path: Path) -> None:
    make_ucsd_original(tmp_path / "UCSDped1", "ped1", gt=GT)
    assert len(load_ucsd(tmp_path, "ped1").test) == 2


def test_original_layout_without_ground_truth(tmp_path: Path) -> None:
    root = make_ucsd_original(tmp_path / "UCSDped2", "ped2")
    (root / "Test" / "UCSDped2.m").unlink()
    with pytest.raises(DataError, match=r"Test: no ground-truth file; expected one of .*UCSDped2\.m"):
        load_ucsd(root, "ped2")


# --- the frames layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("gt_format", ["m", "mat"])
def test_frames_layout(tmp_path: Path, gt_format: str) -> None:
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", train_frames=(6, 5), test_frames=(8, 6), gt=GT,
                            gt_format=gt_format)  # fmt: skip
    dataset = load_ucsd(root, "ped2")
    assert dataset.root == root
    assert [v.name for v in dataset.train] == ["01", "02"]
    assert [len(v) for v in dataset.train] == [6, 5]
    assert [v.name for v in dataset.test] == ["01", "02"]
    assert [len(v) for v in dataset.test] == [8, 6]
    assert labels(dataset) == [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1]]


def test_frames_layout_frames_are_grey_and_square(tmp_path: Path) -> None:
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(3,), gt=[[(1, 3)]], size=(24, 16))
    frames = list(load_ucsd(root, "ped2").test[0].frames(10))
    assert len(frames) == 3
    assert all(f.shape == (10, 10) and f.dtype == np.uint8 for f in frames)


def test_test_videos_pair_with_ground_truth_by_number(tmp_path: Path) -> None:
    gt = [[(1, 2)], [(3, 4)], [(5, 6)]]
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(6, 6, 6), gt=gt)
    dataset = load_ucsd(root, "ped2")
    assert [v.name for v in dataset.test] == ["01", "02", "03"]
    assert labels(dataset) == [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]]


def test_a_test_video_missing_from_the_ground_truth_is_an_error(tmp_path: Path) -> None:
    """A video removed: 03 would otherwise need to find its entry by number, and the count no longer agrees."""
    gt = [[(1, 2)], [(3, 4)], [(5, 6)]]
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(6, 6, 6), gt=gt)
    shutil.rmtree(root / "testing" / "frames" / "02")
    with pytest.raises(DataError, match=r"UCSDped2\.m lists ground truth for 3 test videos, but the test videos are "
                       r"numbered 1, 3; no video for entries 2"):  # fmt: skip
        load_ucsd(root, "ped2")


def test_ground_truth_with_fewer_entries_than_videos_is_an_error(tmp_path: Path) -> None:
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(6, 6, 6), gt=[[(1, 2)], [(3, 4)]])
    with pytest.raises(DataError, match=r"UCSDped2\.m lists ground truth for 2 test videos, .* no entry for videos 3"):
        load_ucsd(root, "ped2")


def test_ground_truth_with_more_entries_than_videos_is_an_error(tmp_path: Path) -> None:
    """Extra lines used to be ignored."""
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(6, 6), gt=[[(1, 2)], [(3, 4)], [(5, 6)]])
    with pytest.raises(DataError, match=r"lists ground truth for 3 test videos, .* no video for entries 3"):
        load_ucsd(root, "ped2")


def test_ground_truth_beyond_the_video_end_is_named(tmp_path: Path) -> None:
    root = make_ucsd_original(tmp_path / "UCSDped2", "ped2", test_frames=(8, 6), gt=[[(1, 8)], [(2, 7)]])
    message = r"UCSDped2\.m, line 3: abnormal range 2-7 does not fit test video Test002, which has 6 frames"
    with pytest.raises(DataError, match=message):
        load_ucsd(root, "ped2")


def test_empty_test_video_folder(tmp_path: Path) -> None:
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", test_frames=(4, 4), gt=[[(1, 1)], []])
    for frame in (root / "testing" / "frames" / "02").iterdir():
        frame.unlink()
    with pytest.raises(DataError, match=r"frames/02: no image files"):
        load_ucsd(root, "ped2")


def test_no_training_videos(tmp_path: Path) -> None:
    root = make_ucsd_frames(tmp_path / "ped2", "ped2", train_frames=())
    (root / "training" / "frames").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no training videos found"):
        load_ucsd(root, "ped2")


# --- neither layout ----------------------------------------------------------------------------------------


def test_root_with_neither_layout_shows_both_trees(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError) as info:
        load_ucsd(tmp_path, "ped2")
    message = str(info.value)
    assert f"{tmp_path} holds neither UCSD layout" in message
    assert f"{tmp_path}/Train/Train001/001.tif" in message
    assert f"{tmp_path}/Test/UCSDped2.m" in message
    assert f"{tmp_path}/training/frames/01/000.jpg" in message
    assert f"{tmp_path}/ped2.mat" in message


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere does not exist\. Expected one of"):
        load_ucsd(tmp_path / "nowhere", "ped2")


# --- the real Ped2, when ../shared is present --------------------------------------------------------------

PED2_TEST_FRAMES = [180, 180, 150, 180, 150, 180, 180, 180, 120, 150, 180, 180]
PED2_ABNORMAL = [120, 86, 146, 150, 129, 159, 135, 180, 120, 150, 180, 93]  # from REFERENCE.md's ranges


@pytest.mark.skipif(not PED2.is_dir(), reason="no ../shared/data/ped2")
def test_real_ped2() -> None:
    dataset = load_ucsd(PED2, "ped2")
    assert len(dataset.train) == 16
    assert sum(len(v) for v in dataset.train) == 2550
    assert [len(v) for v in dataset.test] == PED2_TEST_FRAMES
    assert [int(v.labels.sum()) for v in dataset.test] == PED2_ABNORMAL
    first = dataset.test[0].labels  # 61:180, 1-based: 000.jpg is frame 1
    assert first[:60].sum() == 0 and first[60:].all()
