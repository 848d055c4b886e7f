"""Chroma (chromadb, a PersistentClient in a temporary directory): its HNSW index.

Build arguments M (hnsw max_neighbors, "hnsw:M" in the old metadata) and ef_construction;
query argument ef_search. Metrics: euclidean l2, angular cosine, dot ip (1 - q.x, which orders
points as "dot" does). The vectors go in as embeddings: the collection has no embedding
function (embedding_function=None), so Chroma never loads or downloads a model, and telemetry
is off.

The configuration is chromadb 1.x's `configuration={"hnsw": {...}}` (the "hnsw:*" metadata keys
are its legacy form). Chroma applies ef_search when it loads the index, not to an index that is
already loaded (collection.modify only records it): set_query_arguments records it with
modify, then drops the client's cached system so the next client loads the index from its
files with the new ef_search (untimed; the runner warms up before it times).

fit() adds the rows in equal batches of at most the client's maximum batch size; add() puts
them in the HNSW index as it returns (the newest rows, up to the index's batch_size, sit in a
buffer that is searched exactly), so the index answers at full quality when fit returns, and
the build time is the time of the adds. num_threads (the index's build threads) is the threads this worker was
given; a query runs on one thread.

Streaming (supports_insert, supports_delete): the first insert is fit's build, under the ids
given (its smallest batch sets sync_threshold); a later insert is collection.add in batches of
at most the client's maximum, a delete collection.delete(ids), which marks the rows deleted in
the loaded HNSW index. Every add and delete is first written to Chroma's log (SQLite) and
applied to the loaded index before it returns; the files of the index are rewritten only once
sync_threshold rows have come in, so after a smaller insert or a delete they lag behind. That
is safe for the reload that set_query_arguments makes: on opening the collection Chroma
replays the log from the point its index files were last written (untimed, as the reload is),
so the reloaded index holds every insert and no deleted row (tests/test_stream.py: an insert
below sync_threshold and deletes, then a reload; and the runbooks' replays, a reload before
every search step).

Index size: get_memory_usage() returns the size of the HNSW segment's files (header, graph,
vectors, id map) in kB, 0 before they exist, so the runner's index_size is the engine's index
on disk; get_additional repeats it as index_size_kb. Chroma writes those files after an add()
once sync_threshold rows (default 1,000) have come in since it last wrote them, and has no
call to write them on demand: the collection's sync_threshold is the size of the smallest
batch, so every add() writes them and all rows are on disk when fit returns (the writes are
build time, as they would be with the default; queries write nothing).

Filtered search: with labels every row gets the metadata {"label": its label}, and a filtered
query passes `where={"$and": [{"label": {"$gte": lo}}, {"label": {"$lt": hi}}]}`: Chroma
evaluates it on its metadata segment and searches the HNSW index among the rows that pass.

Concurrent clients (run.py --clients) are connections: each client opens a PersistentClient and
the collection of its own on the index's directory (Chroma's clients of one path in one process
share its engine, which searches from several threads at once).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402
import numpy as np  # noqa: E402
from chromadb.api.client import SharedSystemClient  # noqa: E402
from chromadb.config import Settings  # noqa: E402

from ..base import Client, allowed_threads  # noqa: E402
from ..filtering import LabelRange  # noqa: E402
from ..ondisk import DiskIndex  # noqa: E402

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Embeddings, Metadata

SPACES: dict[str, Literal["l2", "cosine", "ip"]] = {"euclidean": "l2", "angular": "cosine", "dot": "ip"}
COLLECTION = "items"
LABEL = "label"


class ChromaHNSW(DiskIndex):
    metrics = tuple(SPACES)
    point_types = ("float",)
    supports_batch = True
    supports_insert = True
    supports_delete = True
    supports_filter = True
    package = "chromadb"
    clients = "connections"

    def __init__(self, metric: str, M: int, ef_construction: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef_search = 10
        self.threads = allowed_threads()
        self.client: ClientAPI | None = None
        self.collection: Collection | None = None
        self._labels: np.ndarray | None = None  # a filtered set's: each row's metadata

    def _connect(self) -> tuple[ClientAPI, Collection]:
        """A client of the index's directory and the collection through it."""
        client = chromadb.PersistentClient(path=str(self.directory), settings=Settings(anonymized_telemetry=False))
        return client, client.get_collection(COLLECTION, embedding_function=None)

    def _open(self) -> Collection:
        self.client, self.collection = self._connect()
        return self.collection

    def fit(self, X: np.ndarray) -> None:
        self._build(X, np.arange(len(X)))

    def _build(self, X: np.ndarray, ids: np.ndarray) -> None:
        """fit's work, the rows under `ids`: a streaming run's first insert is the build."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        self.client = chromadb.PersistentClient(path=str(self.make_directory()),
                                                settings=Settings(anonymized_telemetry=False))
        batches = -(-len(X) // self.client.get_max_batch_size())
        bounds = np.linspace(0, len(X), batches + 1).astype(int)
        self.collection = self.client.create_collection(
            COLLECTION, embedding_function=None,
            configuration={"hnsw": {"space": SPACES[self.metric], "max_neighbors": self.M,
                                    "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                                    "num_threads": self.threads,
                                    # every add() writes the index files (see the module doc)
                                    "sync_threshold": int(np.diff(bounds).min())}},
        )
        self._add(X, ids, bounds)
        count = self.collection.count()
        if count != len(X):
            raise RuntimeError(f"{self.name}: {count} of {len(X)} rows in the collection")
        self._additional = {"index_size_kb": self.get_memory_usage()}

    def _add(self, X: np.ndarray, ids: np.ndarray, bounds: np.ndarray) -> None:
        """collection.add of the rows between consecutive bounds, one call each."""
        assert self.collection is not None
        labels = self._labels
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            metadatas: list[Metadata] | None = (None if labels is None else
                                                [{LABEL: int(labels[i])} for i in ids[lo:hi]])
            self.collection.add(ids=[str(i) for i in ids[lo:hi]], embeddings=X[lo:hi], metadatas=metadatas)

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """The first call is the build; later ones add the rows in batches of at most the
        client's maximum (see the module doc on what a reload then finds)."""
        if self.collection is None:
            self._build(X, ids)
            return
        assert self.client is not None
        X = np.ascontiguousarray(X, dtype=np.float32)
        self._add(X, ids, np.append(np.arange(0, len(X), self.client.get_max_batch_size()), len(X)))

    def delete(self, ids: np.ndarray) -> None:
        assert self.collection is not None
        self.collection.delete(ids=[str(i) for i in ids.tolist()])

    def index_files(self) -> list[Path]:
        """The HNSW segment's files (header, graph, vectors, id map); see the module doc."""
        assert self.directory is not None
        return list(self.directory.glob("*/*"))

    def set_query_arguments(self, ef_search: int) -> None:
        self.ef_search = int(ef_search)
        assert self.collection is not None
        self.collection.modify(configuration={"hnsw": {"ef_search": self.ef_search}})
        # Reload the index so that ef_search takes effect (see the module doc).
        self.collection = self.client = None
        SharedSystemClient.clear_system_cache()
        hnsw = self._open().configuration["hnsw"]
        applied = hnsw["ef_search"] if hnsw else None
        if applied != self.ef_search:
            raise RuntimeError(f"{self.name}: ef_search is {applied} after setting {self.ef_search}")

    @staticmethod
    def _ids(ids: list) -> np.ndarray:
        return np.fromiter((int(i) for i in ids), dtype=np.int64, count=len(ids))

    def _search(self, collection: Collection, q: np.ndarray, k: int, where: dict | None = None) -> np.ndarray:
        embeddings: Embeddings = [np.asarray(q, dtype=np.float32)]
        result = collection.query(query_embeddings=embeddings, n_results=k, where=where, include=[])
        return self._ids(result["ids"][0])

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self.collection is not None
        return self._search(self.collection, q, k)

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        """Chroma's where on the label metadata, evaluated before the HNSW search (see the module doc)."""
        assert self.collection is not None
        where = {"$and": [{LABEL: {"$gte": int(allowed.lo)}}, {LABEL: {"$lt": int(allowed.hi)}}]}
        return self._search(self.collection, q, k, where)

    def open_client(self) -> Client:
        """A PersistentClient and collection handle of its own (see the module doc; Chroma's
        clients have no close: they are let go with the client)."""
        _, collection = self._connect()
        return Client(query=lambda q, k: self._search(collection, q, k), close=lambda: None)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self.collection is not None
        embeddings: Embeddings = list(np.asarray(Q, dtype=np.float32))
        result = self.collection.query(query_embeddings=embeddings, n_results=k, include=[])
        self._batch_results = [self._ids(ids) for ids in result["ids"]]

    def close(self) -> None:
        self.collection = self.client = None
        SharedSystemClient.clear_system_cache()
