"""Downloads against a real HTTP server on 127.0.0.1, serving bytes the tests make."""

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from ann_bench.datasets import get_dataset, load_dataset, write_dataset
from ann_bench.datasets.download import URL_ENV, download
from ann_bench.errors import DatasetError

BODY = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


class Handler(BaseHTTPRequestHandler):
    """GET with optional Range support; the server object carries files and behaviour."""

    def do_GET(self):
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if wanted and server.honour_range:
            start = int(wanted.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if server.cut_after is not None:  # announce everything, send part, hang up
            payload = payload[:server.cut_after]
        # Recorded before writing: the client may read the last byte and assert before
        # this thread runs again.
        server.sent.append(len(payload))
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.ranges, httpd.sent = {"/file.bin": BODY}, [], []
    httpd.honour_range, httpd.cut_after = True, None
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_full_download(server, tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    assert download(f"{server.base}/file.bin", dest, progress=False) == dest
    assert dest.read_bytes() == BODY
    assert not (tmp_path / "sub" / "file.bin.part").exists()
    assert server.ranges == [None]


def test_resume_sends_range_and_gets_only_the_rest(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(BODY[:300_000])
    download(f"{server.base}/file.bin", dest, progress=False)
    assert dest.read_bytes() == BODY
    assert server.ranges == ["bytes=300000-"]
    assert server.sent == [len(BODY) - 300_000]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.honour_range = False
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"x" * 1000)  # stale bytes must not survive
    download(f"{server.base}/file.bin", dest, progress=False)
    assert dest.read_bytes() == BODY
    assert server.ranges == ["bytes=1000-"] and server.sent == [len(BODY)]


def test_complete_part_file_is_just_renamed(server, tmp_path):
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(BODY)
    download(f"{server.base}/file.bin", dest, progress=False)
    assert dest.read_bytes() == BODY and server.sent == []


def test_truncated_transfer_keeps_part_and_then_resumes(server, tmp_path):
    url, dest = f"{server.base}/file.bin", tmp_path / "file.bin"
    server.cut_after = 400_000
    with pytest.raises(DatasetError) as info:
        download(url, dest, progress=False)
    assert url in str(info.value) and "resume" in str(info.value)
    assert not dest.exists()
    assert (tmp_path / "file.bin.part").read_bytes() == BODY[:400_000]

    server.cut_after = None
    download(url, dest, progress=False)
    assert dest.read_bytes() == BODY
    assert server.ranges[-1] == "bytes=400000-" and server.sent[-1] == len(BODY) - 400_000


def test_not_found_names_the_url(server, tmp_path):
    url = f"{server.base}/missing.hdf5"
    with pytest.raises(DatasetError) as info:
        download(url, tmp_path / "missing.hdf5", progress=False)
    assert url in str(info.value) and "404" in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host_names_the_url(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago is closed now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.hdf5"
    with pytest.raises(DatasetError) as info:
        download(url, tmp_path / "x.hdf5", progress=False)
    assert url in str(info.value) and "\n" not in str(info.value)


def small_dataset_bytes(tmp_path):
    rng = np.random.default_rng(0)
    path = write_dataset(tmp_path / "made.hdf5", rng.random((60, 128), dtype=np.float32),
                         rng.random((4, 128), dtype=np.float32), "euclidean", count=10,
                         progress=False)
    return path.read_bytes()


def test_get_dataset_downloads_from_the_mirror(server, tmp_path, monkeypatch):
    server.files["/sift-128-euclidean.hdf5"] = small_dataset_bytes(tmp_path)
    monkeypatch.setenv(URL_ENV, server.base + "/")
    path = get_dataset("sift-128", tmp_path / "data", progress=False)
    assert path == tmp_path / "data" / "sift-128-euclidean.hdf5"
    data = load_dataset(path)
    assert data.train.shape == (60, 128) and data.neighbors.shape == (4, 10)


def test_get_dataset_deletes_an_invalid_download(server, tmp_path, monkeypatch):
    server.files["/sift-128-euclidean.hdf5"] = b"<html>maintenance</html>"
    monkeypatch.setenv(URL_ENV, server.base)
    with pytest.raises(DatasetError, match="not a valid dataset"):
        get_dataset("sift-128", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_mnist_is_built_here_but_the_mirror_can_give_ann_benchmarks_file(server, tmp_path,
                                                                         monkeypatch):
    # With ANN_BENCH_DATASET_URL set, the published file is taken instead of building.
    server.files["/mnist-784-euclidean.hdf5"] = small_dataset_bytes(tmp_path)
    monkeypatch.setenv(URL_ENV, server.base)
    path = get_dataset("mnist", tmp_path / "data", progress=False)
    assert load_dataset(path).train.shape == (60, 128)
    assert server.sent  # it came from the server, not from a build
