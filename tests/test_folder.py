"""Users' own videos: files and frame folders, with or without a ``video,start,end`` ground-truth CSV."""

from __future__ import annotations

import pytest
from helpers.video_datasets import dataset_config, labels_of, make_folder_dataset, truncate, write_frames
from hydra.utils import instantiate

from anomaly.data.cache import cached_frames
from anomaly.data.datasets.folder import load_folder
from anomaly.errors import DataError, MissingDataError

CSV = ["video,start,end", "evening,5,10", "# the second event", "", "evening,20,22"]


def load(root, ground_truth=None):
    return load_folder(root / "train", root / "test", ground_truth and root / ground_truth)


def test_without_ground_truth_test_videos_are_unlabelled(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")

    data = load(root)

    assert [(v.name, v.source.name) for v in data.train] == [("cam2", "cam2"), ("day", "day.avi")]
    assert [v.name for v in data.test] == ["cam3", "evening"]  # notes.txt is skipped
    assert all(v.labels is None for v in data.test)
    assert data.root == root
    frames = cached_frames([*data.train, *data.test], 227, tmp_path / "cache")
    assert [f.shape for f in frames] == [(16, 227, 227), (24, 227, 227), (18, 227, 227), (30, 227, 227)]


def test_csv_labels_its_videos_and_leaves_the_others_normal(tmp_path):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=CSV)

    labels = {v.name: v.labels.tolist() for v in load(root, "abnormal.csv").test}

    assert labels == {"cam3": [0] * 18, "evening": labels_of([(5, 10), (20, 22)], 30).tolist()}


def test_csv_without_its_header_is_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=["evening,5,10"])

    with pytest.raises(DataError, match=r"abnormal\.csv: expected the header line 'video,start,end' first"):
        load(root, "abnormal.csv")


def test_csv_naming_a_video_that_does_not_exist_is_named_with_its_line(tmp_path):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=[*CSV, "day,1,2"])

    with pytest.raises(DataError, match=r"abnormal\.csv, line 6: no test video 'day'; the test videos are"):
        load(root, "abnormal.csv")


@pytest.mark.parametrize("bad", ["evening,5", "evening,five,10", "evening,10,5", "evening,0,3", "evening,1,2,3"])
def test_malformed_csv_line_is_named_with_its_line(tmp_path, bad):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=["video,start,end", "cam3,1,2", bad])

    with pytest.raises(DataError, match=r"abnormal\.csv, line 3: (cannot read|range .*: expected 1-based)"):
        load(root, "abnormal.csv")


def test_csv_range_past_the_end_is_named_with_its_line(tmp_path):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=["video,start,end", "cam3,10,19"])

    message = r"abnormal\.csv, line 2: abnormal range 10-19 does not fit test video cam3, which has 18 frames"
    with pytest.raises(DataError, match=message):
        load(root, "abnormal.csv")


def test_missing_ground_truth_file_is_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")

    with pytest.raises(DataError, match=r"gt\.csv: no such ground-truth file"):
        load(root, "gt.csv")


def test_missing_or_empty_folder_is_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")
    (tmp_path / "empty").mkdir()

    with pytest.raises(MissingDataError, match=r"nowhere: the test folder does not exist"):
        load_folder(root / "train", tmp_path / "nowhere")
    with pytest.raises(MissingDataError, match=r"empty: no training videos"):
        load_folder(tmp_path / "empty", root / "test")


def test_frame_folder_without_images_is_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")
    (root / "test" / "cam4").mkdir()

    with pytest.raises(DataError, match=r"cam4: no image files"):
        load(root)


def test_two_videos_of_one_name_are_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")
    write_frames(root / "test" / "evening", 5)

    with pytest.raises(DataError, match=r"two videos named 'evening'"):
        load(root)


def test_unreadable_video_is_named(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")
    (root / "train" / "day.avi").write_bytes(b"RIFF....AVI nothing else")

    with pytest.raises(DataError, match=rf"{root / 'train' / 'day.avi'}: OpenCV cannot open this video"):
        load(root)


def test_truncated_video_and_corrupt_image_are_named_when_decoded(tmp_path):
    root = make_folder_dataset(tmp_path / "mine")
    video = truncate(root / "test" / "evening.avi", 0.7)
    image = truncate(root / "test" / "cam3" / "0003.jpg", 0.4)
    cam3, evening = load(root).test

    with pytest.raises(DataError, match=rf"{video}: the file announces 30 frames but decoding stopped"):
        cached_frames([evening], 227, tmp_path / "cache")
    with pytest.raises(DataError, match=rf"{image}: cannot read this image"):
        cached_frames([cam3], 227, tmp_path / "cache")


def test_config_builds_the_loader(tmp_path):
    root = make_folder_dataset(tmp_path / "mine", ground_truth=CSV)

    assert all(
        v.labels is None for v in instantiate(dataset_config("dataset=folder", f"dataset.root={root}").load)().test
    )
    config = dataset_config("dataset=folder", f"dataset.root={root}", f"dataset.ground_truth={root / 'abnormal.csv'}")
    data = instantiate(config.load)()
    assert [int(v.labels.sum()) for v in data.test] == [0, 9]
