"""Fetch and unpack the public datasets: ``python -m anomaly.data.download ped2|ped1|avenue [--dest DIR]``.

What it leaves in DIR (default ``$ANOMALY_DATA``, else ``./data``), where the loaders look for it::

    DIR/
      ped1/Train/ ... Test/UCSDped1.m     UCSD_Anomaly_Dataset.tar.gz holds Ped1 and Ped2: one download
      ped2/Train/ ... Test/UCSDped2.m     places both (a folder already there is left alone)
      avenue/Avenue Dataset/...           from Avenue_Dataset.zip
      avenue/ground_truth_demo/...        from ground_truth_demo.zip

Each archive is streamed to ``DIR/<archive name>`` with a progress bar, checked against its SHA-256
(REFERENCE.md section 7; a mismatch deletes it), unpacked (refusing any member that would land outside
DIR) and deleted. Without a network, download the archive by hand, put it at ``DIR/<archive name>`` and
run the command again: it is checked and used as is. Subway is not downloadable: its authors send it on
request.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from anomaly.data.datasets.avenue import load_avenue
from anomaly.data.datasets.ucsd import load_ucsd
from anomaly.data.video import VideoDataset
from anomaly.errors import DataError, DownloadError

TIMEOUT_S = 60
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A public archive: where it is, its SHA-256 (None: unchecked), and which of its folders go where.

    ``folders`` maps a folder found in the unpacked archive to its place under the data folder.
    """

    url: str
    sha256: str | None
    folders: Mapping[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


ARCHIVES: dict[str, Archive] = {
    "ucsd": Archive(
        "http://www.svcl.ucsd.edu/projects/anomaly/UCSD_Anomaly_Dataset.tar.gz",
        "2329af326951f5097fdd114c50e853957d3e569493a49d22fc082a9fd791915b",
        {"UCSDped1": "ped1", "UCSDped2": "ped2"},
    ),
    "avenue_videos": Archive(
        "http://www.cse.cuhk.edu.hk/leojia/projects/detectabnormal/Avenue_Dataset.zip",
        "fc9cb8432a11ca79c18aa180c72524011411b69d3b0ff27c8816e41c0de61531",
        {"Avenue Dataset": "avenue/Avenue Dataset"},
    ),
    "avenue_ground_truth": Archive(
        "http://www.cse.cuhk.edu.hk/leojia/projects/detectabnormal/ground_truth_demo.zip",
        "60fec1728ec8f73a58aad3aeb5729d70a805a47e0b8eb4bf91ab67ef06386d77",
        {"ground_truth_demo": "avenue/ground_truth_demo"},
    ),
}
DATASETS: dict[str, tuple[str, ...]] = {
    "ped1": ("ucsd",),
    "ped2": ("ucsd",),
    "avenue": ("avenue_videos", "avenue_ground_truth"),
}


def download(dataset: str, dest: str | Path, archives: Mapping[str, Archive] | None = None) -> VideoDataset:
    """Fetch, check and unpack ``dataset`` into ``dest/<dataset>``; returns it as its loader reads it.

    ``archives`` replaces :data:`ARCHIVES` (tests serve their own archives from 127.0.0.1).
    """
    archives = ARCHIVES if archives is None else archives
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for key in DATASETS[dataset]:
        archive = archives[key]
        wanted = [dest / place for place in archive.folders.values() if Path(place).parts[0] == dataset]
        if all(path.exists() for path in wanted):
            print(f"{', '.join(map(str, wanted))}: already there", file=sys.stderr)
            continue
        path = fetch(archive, dest)
        for placed in unpack(archive, path, dest):
            print(f"{placed}: unpacked", file=sys.stderr)
        path.unlink()
    if dataset == "avenue":
        return load_avenue(dest / dataset)
    return load_ucsd(dest / dataset, dataset)


def fetch(archive: Archive, dest: Path) -> Path:
    """``dest/<archive name>``, downloaded unless already there, its SHA-256 checked."""
    target = dest / archive.filename
    if target.exists():
        digest = hashlib.sha256()
        with open(target, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        _check(archive, target, digest.hexdigest(), "it is not the expected file: delete it and run again")
        return target
    part = target.with_name(f".{target.name}.part")
    try:
        digest = hashlib.sha256()
        with urllib.request.urlopen(archive.url, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        _check(archive, archive.url, digest.hexdigest(), "the download was deleted")
        os.replace(part, target)
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
        reason = f"HTTP {err.code} {err.reason}" if isinstance(err, urllib.error.HTTPError) else err
        reason = getattr(reason, "reason", None) or reason
        raise DownloadError(
            f"cannot download {archive.url} ({reason}). Download it by hand, put it at {target} "
            f"and run this command again."
        ) from None
    finally:
        part.unlink(missing_ok=True)
    return target


def _check(archive: Archive, what: str | Path, sha256: str, consequence: str) -> None:
    if archive.sha256 is not None and sha256 != archive.sha256.lower():
        raise DownloadError(f"{what}: SHA-256 {sha256} is not the expected {archive.sha256}; {consequence}")


def unpack(archive: Archive, path: Path, dest: Path) -> list[Path]:
    """Unpack ``path`` and move each of ``archive.folders`` not yet in ``dest`` to its place there."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        extract_safely(path, staging)
        placed = []
        for folder, place in archive.folders.items():
            target = dest / place
            if target.exists():
                continue
            found = _find_folder(staging, folder)
            if found is None:
                raise DownloadError(f"{path}: holds no folder {folder!r}; is it the right archive?")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(found), str(target))
            placed.append(target)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_safely(path: Path, into: Path) -> None:
    """Extract a zip or tar archive into ``into``, refusing members and links that point outside it."""
    into = into.resolve()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                _inside(into, into / name, path, name)
            archive.extractall(into)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            for member in members:
                _inside(into, into / member.name, path, member.name)
                if member.issym():
                    _inside(into, (into / member.name).parent / member.linkname, path, member.name)
                elif member.islnk():
                    _inside(into, into / member.linkname, path, member.name)
                elif not (member.isfile() or member.isdir()):
                    raise DownloadError(f"{path}: member {member.name!r} is a device or pipe; refusing to unpack")
            extras = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(into, members, **extras)
    else:
        raise DownloadError(f"{path}: neither a zip nor a tar archive; delete it and run again")


def _inside(root: Path, target: Path, archive: Path, name: str) -> None:
    if not target.resolve().is_relative_to(root):
        raise DownloadError(f"{archive}: member {name!r} would land outside {root}; refusing to unpack")


def _find_folder(root: Path, name: str) -> Path | None:
    """The shallowest folder called ``name`` under ``root``, skipping macOS ``__MACOSX`` copies."""
    found = [p for p in root.rglob(name) if p.is_dir() and "__MACOSX" not in p.parts]
    return min(found, key=lambda p: len(p.parts), default=None)


def main(argv: Sequence[str] | None = None, archives: Mapping[str, Archive] | None = None) -> int:
    """The command line; returns the exit status (errors: one line on stderr, status 1)."""
    parser = argparse.ArgumentParser(
        prog="python -m anomaly.data.download", description="Fetch and unpack a public dataset."
    )
    names = sorted(DATASETS)
    parser.add_argument("dataset", metavar="{" + ",".join(names) + "}")
    default = Path(os.environ.get("ANOMALY_DATA") or "data")
    parser.add_argument("--dest", type=Path, default=default, help=f"data folder (default: {default})")
    args = parser.parse_args(argv)
    if args.dataset in ("subway_entrance", "subway_exit"):  # datasets the loaders read, but nobody may serve
        parser.error(f"{args.dataset}: not downloadable; request the Subway videos from their authors (Adam et al., "
                     "2008) and place them as the README's Data section says")  # fmt: skip
    if args.dataset not in DATASETS:
        parser.error(f"argument dataset: invalid choice: {args.dataset!r} (choose from {', '.join(names)})")
    try:
        data = download(args.dataset, args.dest, archives)
    except (DownloadError, DataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    print(f"{args.dataset}: {len(data.train)} training and {len(data.test)} test videos in {data.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
