"""The downloader against archives served from 127.0.0.1: fetch, check, unpack safely, place for loaders."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.datasets import make_ucsd_original
from helpers.video_datasets import make_avenue_original

from anomaly.data.datasets.avenue import load_avenue
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.download import ARCHIVES, DownloadError, download, extract_safely, main


class Server:
    """A static file server on 127.0.0.1 in a thread, counting the requests it answers."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                server.requests.append(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    server = Server(folder)
    yield folder, server
    server.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tar_gz(path: Path, tree: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)
    return path


def zip_of(path: Path, tree: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(tree.rglob("*")):
            archive.write(file, Path(tree.name) / file.relative_to(tree))
    return path


def ucsd_archive(served_folder: Path, tmp_path: Path) -> Path:
    """UCSD_Anomaly_Dataset.tar.gz as published: UCSD_Anomaly_Dataset.v1p2/UCSDped{1,2}/..."""
    tree = tmp_path / "build" / "UCSD_Anomaly_Dataset.v1p2"
    make_ucsd_original(tree / "UCSDped1", "ped1")
    make_ucsd_original(tree / "UCSDped2", "ped2", test_frames=(8, 6, 7))
    return tar_gz(served_folder / "UCSD_Anomaly_Dataset.tar.gz", tree)


def closed_port_url(name: str) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def test_ucsd_is_fetched_checked_unpacked_once_and_placed_for_both_peds(tmp_path, served):
    folder, server = served
    archive = ucsd_archive(folder, tmp_path)
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=server.url(archive.name), sha256=sha256(archive))}
    dest = tmp_path / "data"

    data = download("ped2", dest, archives)

    assert len(data.test) == 3
    assert len(load_ucsd(dest / "ped2", "ped2").test) == 3
    assert len(load_ucsd(dest / "ped1", "ped1").test) == 2  # the same archive placed Ped1 too
    assert sorted(p.name for p in dest.iterdir()) == ["ped1", "ped2"]  # archive and staging removed
    assert server.requests == ["/UCSD_Anomaly_Dataset.tar.gz"]
    download("ped1", dest, archives)  # already there: no second download
    assert len(server.requests) == 1


def test_avenue_archives_are_placed_side_by_side(tmp_path, served):
    folder, server = served
    tree = make_avenue_original(tmp_path / "build", train_frames=(8,), test_frames=(10,), abnormal=[[(4, 6)]])
    videos = zip_of(folder / "Avenue_Dataset.zip", tree / "Avenue Dataset")
    truth = zip_of(folder / "ground_truth_demo.zip", tree / "ground_truth_demo")
    archives = {
        "avenue_videos": replace(ARCHIVES["avenue_videos"], url=server.url(videos.name), sha256=sha256(videos)),
        "avenue_ground_truth": replace(
            ARCHIVES["avenue_ground_truth"], url=server.url(truth.name), sha256=sha256(truth)
        ),
    }

    assert main(["avenue", "--dest", str(tmp_path / "data")], archives) == 0

    data = load_avenue(tmp_path / "data" / "avenue")
    assert data.test[0].labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]


def test_checksum_mismatch_is_an_error_and_leaves_nothing_behind(tmp_path, served):
    folder, server = served
    archive = ucsd_archive(folder, tmp_path)
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=server.url(archive.name), sha256="0" * 64)}
    dest = tmp_path / "data"

    with pytest.raises(DownloadError, match=rf"{server.url(archive.name)}: SHA-256 {sha256(archive)} is not"):
        download("ped2", dest, archives)
    assert list(dest.iterdir()) == []


def test_without_network_one_line_says_where_to_put_a_hand_download(tmp_path, capsys):
    url = closed_port_url("UCSD_Anomaly_Dataset.tar.gz")
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=url)}
    dest = tmp_path / "data"

    assert main(["ped2", "--dest", str(dest)], archives) == 1

    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert error.startswith(f"error: cannot download {url} (")
    assert f"put it at {dest / 'UCSD_Anomaly_Dataset.tar.gz'}" in error
    assert list(dest.iterdir()) == []


def test_missing_file_on_the_server_is_reported(tmp_path, served):
    folder, server = served
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=server.url("UCSD_Anomaly_Dataset.tar.gz"))}

    with pytest.raises(
        DownloadError, match=r"cannot download .*UCSD_Anomaly_Dataset\.tar\.gz \(HTTP 404 File not found\)"
    ):
        download("ped2", tmp_path / "data", archives)


def test_a_hand_downloaded_archive_is_checked_and_used_without_network(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()
    archive = ucsd_archive(dest, tmp_path)
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=closed_port_url(archive.name), sha256=sha256(archive))}

    assert len(download("ped2", dest, archives).train) == 2
    assert not archive.exists()


def test_a_hand_downloaded_archive_of_another_checksum_is_named_and_kept(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()
    archive = ucsd_archive(dest, tmp_path)
    archives = {"ucsd": replace(ARCHIVES["ucsd"], url=closed_port_url(archive.name), sha256="f" * 64)}

    with pytest.raises(DownloadError, match=rf"{archive}: SHA-256 .* is not the expected f+; .*delete it and run"):
        download("ped2", dest, archives)
    assert archive.exists()  # the user's own file: they decide what to do with it


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("name", ["../escaped.txt", "/tmp/escaped-absolute.txt", "inside/../../escaped.txt"])
def test_members_outside_the_folder_are_refused(tmp_path, kind, name):
    path = tmp_path / f"evil.{kind}"
    if kind == "tar":
        with tarfile.open(path, "w") as archive:
            info = tarfile.TarInfo(name)
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(zipfile.ZipInfo(name), b"evil")
    into = tmp_path / "into"
    into.mkdir()

    with pytest.raises(DownloadError, match=rf"{path}: member '{name}' would land outside"):
        extract_safely(path, into)
    assert list(into.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("data/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        archive.addfile(info)
    (tmp_path / "into").mkdir()

    with pytest.raises(DownloadError, match=r"member 'data/passwd' would land outside"):
        extract_safely(path, tmp_path / "into")


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("subway_exit", "subway_exit: not downloadable; request the Subway videos from their authors"),
        ("ped3", "invalid choice: 'ped3' (choose from avenue, ped1, ped2)"),
    ],
)
def test_a_dataset_that_cannot_be_downloaded_is_named(tmp_path, capsys, dataset, message):
    with pytest.raises(SystemExit) as exit_:
        main([dataset, "--dest", str(tmp_path / "data")])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
