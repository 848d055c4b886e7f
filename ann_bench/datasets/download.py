"""Downloading a dataset file over HTTP, resuming a partial file with a Range request."""

from __future__ import annotations

import http.client
import os
import re
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from ..errors import DatasetError
from ..progress import bar as progress_bar

DEFAULT_BASE_URL = "http://ann-benchmarks.com"
URL_ENV = "ANN_BENCH_DATASET_URL"
# ann-benchmarks.com sits behind a firewall that rejects urllib's default agent.
_USER_AGENT = "Mozilla/5.0 (compatible; ann-bench)"
_TIMEOUT_S = 60
_READ_BYTES = 1 << 20


def download(url: str, dest: Path | str, progress: bool = True) -> Path:
    """Fetch `url` into `dest` through `dest`.part, resuming a partial file with a Range
    request; `dest` appears only once the whole file (per Content-Length) has arrived."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=_TIMEOUT_S)
    except HTTPError as error:
        if error.code == 416 and offset:
            return _range_not_satisfiable(url, dest, part, offset, error, progress)
        raise DatasetError(f"cannot download {url}: HTTP {error.code} {error.reason}; check "
                           f"the name, or set {URL_ENV} to a mirror that has it") from None
    except (URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DatasetError(f"cannot reach {url} ({reason}); check the network, or set "
                           f"{URL_ENV} to a reachable mirror") from None
    with response:
        start, total = _response_range(response, offset)
        if start is None:
            if not offset:
                raise DatasetError(f"{url} answered with a partial response nobody asked for; "
                                   f"set {URL_ENV} to another mirror")
            part.unlink()  # A 206 for other bytes than asked: start over without Range.
            return download(url, dest, progress)
        received, failure = _stream(response, part, start, total, dest.name, progress)
    if failure is not None or (total is not None and received != total):
        stopped = f"{received} of {total} bytes" if total is not None else f"{received} bytes"
        raise DatasetError(f"download of {url} stopped after {stopped}"
                           f"{f' ({failure})' if failure else ''}; run the same command again "
                           f"to resume from {part}")
    os.replace(part, dest)
    return dest


def _response_range(response: Any, offset: int) -> tuple[int | None, int | None]:
    """(first byte of the body, total file size or None); (None, _) if unusable."""
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None else None
    if response.status != 206:
        return 0, length  # A full body: the server ignored Range, or none was sent.
    first, total = _content_range(response.headers.get("Content-Range"))
    if first != offset:
        return None, None
    if total is None and length is not None:
        total = offset + length
    return offset, total


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total or None) from 'bytes a-b/total' or 'bytes */total'."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (value or "").strip())
    if not match:
        return None, None
    first = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return first, total


def _range_not_satisfiable(url: str, dest: Path, part: Path, offset: int, error: HTTPError,
                           progress: bool) -> Path:
    """416: the partial file is already whole (rename it) or longer than the file (restart)."""
    _, total = _content_range(error.headers.get("Content-Range"))
    if total == offset:
        os.replace(part, dest)
        return dest
    part.unlink()
    return download(url, dest, progress)


def _stream(response: Any, part: Path, start: int, total: int | None, label: str,
            progress: bool) -> tuple[int, str | None]:
    """Append the body to `part` (truncated to `start` first): (file size, failure or None)."""
    received, failure = start, None
    with open(part, "r+b" if start else "wb") as out, \
            progress_bar(progress, total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=label) as bar:
        out.truncate(start)
        out.seek(start)
        while True:
            try:
                chunk = response.read(_READ_BYTES)
            except (http.client.HTTPException, OSError) as error:
                failure = str(error) or type(error).__name__
                break
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received, failure


