"""The results tree as a place to write: its failures said in one line (a file where a directory
should be, a read-only or full disk, a name too long), and names checked before a sweep starts."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import UserError

# Room left in a path for the longest file name a directory may get (a temporary name included).
FILE_NAME_ROOM = 255


class ResultsDiskError(UserError):
    """The results tree cannot be written. `records` are what the sweep finished before, for
    its summary."""

    def __init__(self, message: str, records: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.records = records


def disk_error(error: OSError, results_dir: Path, records: Sequence[Any] = ()) -> ResultsDiskError:
    """The one-line message for an OSError met writing under results_dir."""
    where = error.filename or results_dir
    # h5py's strerror is a paragraph; the errno's own words say it in a few.
    reason = os.strerror(error.errno) if error.errno else str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        message = f"the results disk is full ({reason}: {where}); free some space or give another --results"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        message = (f"cannot write to the results directory {results_dir} ({reason}: {where}); make it "
                   f"writable or give another --results")
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        message = f"--results {results_dir}: {where} or a folder above it is a file, not a directory; give a directory"
    elif error.errno == errno.ENAMETOOLONG:
        message = f"a results path is too long ({where}); use shorter names or a shorter --results"
    else:
        message = f"cannot write results under {results_dir} ({reason}: {where})"
    return ResultsDiskError(message, records)


def check_directory_name(directory: Path, named: dict[str, str]) -> None:
    """Refuse a directory the file system cannot hold: a part longer than a file name may be,
    or a path with no room for its files. `named` says what each part comes from (e.g. the
    algorithm name), for the message."""
    existing = next(p for p in (directory, *directory.parents) if os.path.exists(p))  # False for a part too long
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    path_max = os.pathconf(existing, "PC_PATH_MAX")
    for part in directory.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            what = named.get(part, "a folder of --results")
            shown = part if len(part) <= 40 else part[:40] + "..."
            raise ResultsDiskError(f"{what} '{shown}' makes a file name of {size} bytes, more than the {name_max} "
                                   f"this file system allows; shorten it")
    size = len(os.fsencode(directory))
    if size + 1 + FILE_NAME_ROOM >= path_max:
        raise ResultsDiskError(f"the results path {directory} is {size} bytes, too long for its files (a path may "
                               f"have {path_max - 1}); use a shorter --results or shorter names")
