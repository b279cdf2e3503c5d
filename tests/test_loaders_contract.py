"""One contract for every dataset loader, on tiny data in each real on-disk layout.

Whatever the layout, a loader returns a :class:`VideoDataset` whose training videos are unlabelled, whose test
videos carry a 0/1 label per frame (or none at all, for users' videos without ground truth), whose names are
unique, and whose frames decode to exactly ``len(video)`` grey squares. And it reads each video's length once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import make_ucsd_frames, make_ucsd_original
from helpers.video_datasets import make_avenue_frames, make_avenue_original, make_folder_dataset, make_subway

from anomaly.data.datasets.avenue import load_avenue
from anomaly.data.datasets.folder import load_folder
from anomaly.data.datasets.subway import load_subway
from anomaly.data.datasets.synthetic import load_synthetic
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.video import Video, VideoDataset

LOADERS: dict[str, Callable[[Path], VideoDataset]] = {
    "ucsd original": lambda root: load_ucsd(make_ucsd_original(root / "UCSDped2"), "ped2"),
    "ucsd frames .m": lambda root: load_ucsd(make_ucsd_frames(root / "ped2"), "ped2"),
    "ucsd frames .mat": lambda root: load_ucsd(make_ucsd_frames(root / "ped2", gt_format="mat"), "ped2"),
    "avenue original": lambda root: load_avenue(make_avenue_original(root / "avenue")),
    "avenue frames vectors": lambda root: load_avenue(make_avenue_frames(root / "avenue")),
    "avenue frames gt": lambda root: load_avenue(make_avenue_frames(root / "avenue", gt_format="gt")),
    "subway video": lambda root: load_subway(make_subway(root / "subway"), "subway_entrance_turnstiles.avi",
                                             "ground_truth.txt", train_minutes=0.1, segment_frames=40),
    "subway frames": lambda root: load_subway(make_subway(root / "subway", video="frames"), "frames",
                                              "ground_truth.txt", train_minutes=0.1, segment_frames=40, fps=10),
    "folder with csv": lambda root: load_folder(
        make_folder_dataset(root / "mine", ["video,start,end", "evening,3,9"]) / "train", root / "mine/test",
        root / "mine/abnormal.csv"),
    "folder without ground truth": lambda root: load_folder(make_folder_dataset(root / "mine") / "train",
                                                            root / "mine/test"),
    "synthetic": lambda root: load_synthetic(root / "synthetic", progress=False),
}  # fmt: skip


@pytest.fixture(scope="module", params=list(LOADERS))
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> VideoDataset:
    return LOADERS[request.param](tmp_path_factory.mktemp(request.param.replace(" ", "_")))


def test_both_splits_hold_videos_with_unique_names(dataset: VideoDataset) -> None:
    assert dataset.train and dataset.test
    for videos in (dataset.train, dataset.test):
        names = [v.name for v in videos]
        assert len(set(names)) == len(names)
        assert all(isinstance(v, Video) and len(v) > 0 for v in videos)


def test_training_videos_are_unlabelled_and_test_labels_are_per_frame(dataset: VideoDataset) -> None:
    assert all(v.labels is None for v in dataset.train)
    labelled = [v for v in dataset.test if v.labels is not None]
    assert len(labelled) in (0, len(dataset.test))  # all test videos have ground truth, or none has
    for video in labelled:
        assert video.labels.dtype == np.int64 and video.labels.shape == (len(video),)
        assert set(np.unique(video.labels)) <= {0, 1}


def test_frames_decode_to_exactly_len_grey_squares(dataset: VideoDataset) -> None:
    for video in (dataset.train[0], dataset.test[-1]):
        frames = list(video.frames(16))
        assert len(frames) == len(video)
        assert all(f.shape == (16, 16) and f.dtype == np.uint8 for f in frames)


def test_video_lengths_are_read_once(dataset: VideoDataset) -> None:
    video = dataset.test[0]
    first = len(video)
    source = video.source
    # a second call does not go back to the disk: the cached count answers even if the folder changed
    assert "source_frames" in video.__dict__
    assert len(video) == first and video.source == source
