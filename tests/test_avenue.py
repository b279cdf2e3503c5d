"""CUHK Avenue: both layouts read end to end, videos paired with ground truth by number, bad inputs named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from helpers.video_datasets import (
    dataset_config,
    labels_of,
    make_avenue_frames,
    make_avenue_original,
    truncate,
    write_vol_label,
)
from hydra.utils import instantiate

from anomaly.data.cache import cached_frames
from anomaly.data.datasets.avenue import load_avenue
from anomaly.errors import DataError, MissingDataError

MASKS = Path("ground_truth_demo") / "testing_label_mask"


def test_original_layout_decodes_and_labels_every_frame(tmp_path):
    root = make_avenue_original(tmp_path / "avenue", abnormal=[[(11, 20)], [(1, 5), (20, 26)]])

    data = load_avenue(root)

    assert [v.name for v in data.train] == ["01", "02"]
    assert [v.name for v in data.test] == ["01", "02"]
    assert data.test[0].labels.tolist() == labels_of([(11, 20)], 30).tolist()
    assert data.test[1].labels.tolist() == labels_of([(1, 5), (20, 26)], 26).tolist()
    frames = cached_frames([*data.train, *data.test], 227, tmp_path / "cache")
    assert [f.shape for f in frames] == [(20, 227, 227), (24, 227, 227), (30, 227, 227), (26, 227, 227)]
    assert all(f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[2][0], frames[2][1])  # frames come in order, not one repeated
    again = cached_frames([*data.train, *data.test], 227, tmp_path / "cache")
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))


@pytest.mark.parametrize("gt_format", ["vectors", "gt"])
def test_frames_layout_reads_both_ground_truth_formats(tmp_path, gt_format):
    root = make_avenue_frames(tmp_path / "avenue", abnormal=[[(3, 9)], [(12, 12)]], gt_format=gt_format)

    data = load_avenue(root)

    assert [v.name for v in data.train] == ["01", "02"]
    assert data.test[0].labels.tolist() == labels_of([(3, 9)], 14).tolist()
    assert data.test[1].labels.tolist() == labels_of([(12, 12)], 12).tolist()
    frames = cached_frames(data.test, 227, None)
    assert [f.shape for f in frames] == [(14, 227, 227), (12, 227, 227)]


def test_videos_pair_with_ground_truth_by_number_so_a_subset_works(tmp_path):
    abnormal = [[(1, 2)], [(3, 4)], [(5, 9)]]
    root = make_avenue_original(tmp_path / "avenue", test_frames=(20, 22, 24), abnormal=abnormal)
    (root / "Avenue Dataset" / "testing_videos" / "02.avi").unlink()
    (root / MASKS / "2_label.mat").unlink()

    data = load_avenue(root)

    assert [v.name for v in data.test] == ["01", "03"]
    assert data.test[1].labels.tolist() == labels_of([(5, 9)], 24).tolist()


def test_test_video_without_ground_truth_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    (root / MASKS / "2_label.mat").unlink()

    with pytest.raises(DataError, match=r"testing_videos/02\.avi: test video 2 has no ground truth.*/2_label"):
        load_avenue(root)


def test_ground_truth_without_its_video_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    (root / "Avenue Dataset" / "testing_videos" / "02.avi").unlink()

    with pytest.raises(DataError, match=r"testing_label_mask/2_label\.mat: ground truth for test video 2"):
        load_avenue(root)


def test_mask_count_other_than_the_frame_count_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    label = write_vol_label(root / MASKS / "1_label.mat", np.zeros(29), (48, 64))

    with pytest.raises(DataError, match=rf"{label}: 29 masks for the 30 frames of .*01\.avi; expected 30"):
        load_avenue(root)


def test_mask_of_another_size_than_the_frames_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    label = write_vol_label(root / MASKS / "1_label.mat", np.zeros(30), (36, 64))

    with pytest.raises(DataError, match=rf"{label}: mask 1 has shape \(36, 64\) \(uint8\); expected \(48, 64\)"):
        load_avenue(root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"labels": np.zeros((1, 30))}, "no variable 'volLabel'"),
        ({"volLabel": np.zeros((48, 64, 30))}, "expected a 1xN cell of masks"),
    ],
)
def test_label_file_of_another_structure_is_named(tmp_path, content, message):
    root = make_avenue_original(tmp_path / "avenue")
    label = root / MASKS / "1_label.mat"
    scipy.io.savemat(label, content)

    with pytest.raises(DataError, match=rf"{label}: .*{message}"):
        load_avenue(root)


def test_unreadable_label_file_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    label = root / MASKS / "2_label.mat"
    truncate(label, 0.5)

    with pytest.raises(DataError, match=rf"{label}: cannot read this MATLAB file"):
        load_avenue(root)


def test_frames_layout_vector_of_wrong_length_is_named(tmp_path):
    root = make_avenue_frames(tmp_path / "avenue")
    scipy.io.savemat(root / "avenue.mat", {"01": np.zeros((1, 13)), "02": np.zeros((1, 12))})

    with pytest.raises(DataError, match=r"avenue\.mat: variable '01' has shape \(1, 13\); expected a 1x14 0/1"):
        load_avenue(root)


def test_frames_layout_video_without_its_variable_is_named(tmp_path):
    root = make_avenue_frames(tmp_path / "avenue")
    scipy.io.savemat(root / "avenue.mat", {"01": np.zeros((1, 14))})

    with pytest.raises(DataError, match=r"testing/frames/02: this test video has no ground truth; .*avenue\.mat"):
        load_avenue(root)


def test_frames_layout_variable_without_its_video_is_named(tmp_path):
    root = make_avenue_frames(tmp_path / "avenue")
    vectors = {"01": np.zeros((1, 14)), "02": np.zeros((1, 12)), "03": np.zeros((1, 9))}
    scipy.io.savemat(root / "avenue.mat", vectors)

    with pytest.raises(DataError, match=r"avenue\.mat: variable '03' is ground truth for test video 3"):
        load_avenue(root)


def test_missing_root_shows_both_layouts(tmp_path):
    with pytest.raises(MissingDataError) as error:
        load_avenue(tmp_path / "nowhere")

    message = str(error.value)
    assert f"{tmp_path / 'nowhere'} does not exist" in message
    assert "Avenue Dataset/testing_videos/01.avi" in message
    assert "ground_truth_demo/testing_label_mask/1_label.mat" in message
    assert "training/frames/01/0000.jpg" in message
    assert "avenue.mat" in message


def test_videos_without_their_ground_truth_archive_say_what_is_missing(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    for label in (root / MASKS).iterdir():
        label.unlink()
    (root / MASKS).rmdir()

    with pytest.raises(MissingDataError, match=r"ground_truth_demo/testing_label_mask: missing"):
        load_avenue(root)


def test_truncated_video_is_named_when_decoded(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    video = truncate(root / "Avenue Dataset" / "testing_videos" / "01.avi", 0.8)
    data = load_avenue(root)  # the header still announces 30 frames: only decoding finds out

    with pytest.raises(DataError, match=rf"{video}: the file announces 30 frames but decoding stopped"):
        cached_frames(data.test, 227, tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("01-")]


def test_unreadable_video_is_named(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    video = root / "Avenue Dataset" / "training_videos" / "02.avi"
    video.write_bytes(b"not a video at all" * 20)

    with pytest.raises(DataError, match=rf"{video}: OpenCV cannot open this video"):
        load_avenue(root)


def test_corrupt_frame_image_is_named_when_decoded(tmp_path):
    root = make_avenue_frames(tmp_path / "avenue")
    image = truncate(root / "testing" / "frames" / "02" / "0005.jpg", 0.5)
    data = load_avenue(root)

    with pytest.raises(DataError, match=rf"{image}: cannot read this image"):
        cached_frames(data.test, 227, tmp_path / "cache")


def test_config_builds_the_loader(tmp_path):
    root = make_avenue_original(tmp_path / "avenue")
    config = dataset_config("dataset=avenue", f"dataset.root={root}")

    data = instantiate(config.load)()

    assert (data.name, data.root, len(data.test)) == ("avenue", root, 2)
    assert config.mask == []
