"""Milvus Lite (milvus-lite, through pymilvus's MilvusClient): HNSW and IVF_FLAT.

MilvusClient on a local `.db` path starts Milvus Lite's gRPC server inside this process (a
thread pool listening on 127.0.0.1, which a container without network still has) and talks to
it as it would to a Milvus server; every insert, search and index call goes through gRPC.
Milvus Lite 3 is a rewrite of Milvus Lite in Python: an LSM store (WAL, memtable, Parquet
segments of at most 100,000 rows) with one FAISS index per sealed segment, searched segment by
segment and merged; it is not the C++ Milvus server.
Its cost: each search also walks every row's primary-key and delete bookkeeping in Python
(executor_indexed._build_local_mask, about 0.3 ms per 1,000 rows, against 0.2 ms for the FAISS
search on 90,000 rows), so a query takes ~0.4 s at 1.2M rows; the entries are disabled in
algorithms.yaml for that reason. Milvus Lite 2.5 (the C++ core) is no alternative here: its
local mode builds only FLAT, IVF_FLAT and AUTOINDEX, not HNSW.

- MilvusHNSW: build arguments M and efConstruction; query argument ef.
- MilvusIVF: IVF_FLAT, build argument nlist; query argument nprobe.
Metrics: euclidean L2, angular COSINE, dot IP (the vectors go in as given).

fit(): insert in batches, flush (the rows leave the memtable for sealed segments, which is
where indexes live: a search of unflushed rows is brute force), create_index, load_collection.
Build time (the runner's timer around fit) is all of it. fit then checks that the index is
really there: describe_index says state Finished with every row indexed, and every segment has
its index file of the requested type on disk.

Streaming (supports_insert, supports_delete): the first insert is fit's build, under the ids
given; a later insert is `insert` then `flush`, so its rows become a sealed segment, which
Milvus Lite's background worker indexes (a segment without its index yet is searched by brute
force, as are rows still in the memtable); a delete is `delete` by primary-key expression
(`id in [...]`), whose tombstones every search applies.

Index size: get_memory_usage() returns the size of the engine's index files in kB (0 before
they exist), so the runner's index_size = after fit - before fit is the engine's index (for
HNSW it holds the vectors as well as the graph, as FAISS stores it); get_additional repeats it
as index_size_kb, with the number of segments. The client's RSS would also count the server's
Python objects, Parquet buffers and gRPC.

Filtered search: with labels the schema has an INT32 `label` field, and a filtered query is
the search with `filter="label >= lo and label < hi"`: Milvus Lite evaluates the expression on
each segment and hands the rows that pass to FAISS as its IDSelector (a pre-filter).

Concurrent clients (run.py --clients) are connections: each client is a MilvusClient of its own,
a gRPC channel of its own to the one Milvus Lite server of the index's .db.

Threads: FAISS's OpenMP pool (one per process, shared with Milvus Lite) uses the allowed threads
for the build and one thread for single queries; batch_query sends every query in one search
request and lets FAISS use the allowed threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from milvus_lite.server_manager import server_manager_instance
from pymilvus import DataType, MilvusClient

from ..base import Client, allowed_threads, set_openmp_threads
from ..filtering import LabelRange
from ..ondisk import DiskIndex

METRIC_TYPES = {"euclidean": "L2", "angular": "COSINE", "dot": "IP"}
COLLECTION = "items"
FIELD = "vector"
LABEL = "label"
INSERT_ROWS = 10_000  # rows per insert request (gRPC messages stay well under 64 MB)
INDEX_FILE_SUFFIX = ".idx"
DB_FILE = "bench.db"


class _Milvus(DiskIndex):
    metrics = tuple(METRIC_TYPES)
    point_types = ("float",)
    supports_batch = True
    supports_insert = True
    supports_delete = True
    supports_filter = True
    package = "milvus-lite"
    clients = "connections"
    index_type = ""

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.metric_type = METRIC_TYPES[metric]
        self.threads = allowed_threads()
        self.client: MilvusClient | None = None
        self.search_params: dict = {"metric_type": self.metric_type, "params": {}}
        self._labels: np.ndarray | None = None  # a filtered set's: a label field

    def build_params(self) -> dict:
        raise NotImplementedError

    def fit(self, X: np.ndarray) -> None:
        self._build(X, np.arange(len(X)))

    def _build(self, X: np.ndarray, ids: np.ndarray) -> None:
        """fit's work, the rows under `ids`: a streaming run's first insert is the build."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        n, d = X.shape
        set_openmp_threads(self.threads)
        self.client = client = MilvusClient(str(self.make_directory() / DB_FILE))
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(FIELD, DataType.FLOAT_VECTOR, dim=d)
        labels = self._labels
        if labels is not None:
            schema.add_field(LABEL, DataType.INT32)
        client.create_collection(COLLECTION, schema=schema)
        self._add(X, ids)
        client.flush(COLLECTION)
        params = client.prepare_index_params()
        params.add_index(field_name=FIELD, index_type=self.index_type, metric_type=self.metric_type,
                         params=self.build_params())
        client.create_index(COLLECTION, params)
        client.load_collection(COLLECTION)
        self._check_index(n)
        set_openmp_threads(1)

    def _add(self, X: np.ndarray, ids: np.ndarray) -> None:
        assert self.client is not None
        labels = self._labels
        for lo in range(0, len(X), INSERT_ROWS):
            rows = [{"id": int(i), FIELD: x} | ({} if labels is None else {LABEL: int(labels[i])})
                    for i, x in zip(ids[lo:lo + INSERT_ROWS], X[lo:lo + INSERT_ROWS])]
            self.client.insert(COLLECTION, rows)

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """The first call is the build; later ones insert and flush, so the rows leave the
        memtable (searched by brute force) for sealed segments, which Milvus Lite indexes in
        its background worker (a segment is searched by brute force until its index is there)."""
        if self.client is None:
            self._build(X, ids)
            return
        self._add(np.ascontiguousarray(X, dtype=np.float32), ids)
        self.client.flush(COLLECTION)

    def delete(self, ids: np.ndarray) -> None:
        """Delete by primary-key expression (`id in [...]`), INSERT_ROWS ids a request."""
        assert self.client is not None
        for lo in range(0, len(ids), INSERT_ROWS):
            self.client.delete(COLLECTION, filter=f"id in {ids[lo:lo + INSERT_ROWS].tolist()}")

    def index_files(self) -> list[Path]:
        """One FAISS index file per sealed segment; see the module doc."""
        assert self.directory is not None
        suffix = f".{FIELD}.{self.index_type.lower()}{INDEX_FILE_SUFFIX}"
        return sorted(p for p in self.directory.rglob(f"*{suffix}") if p.is_file())

    def _check_index(self, n: int) -> None:
        assert self.client is not None and self.directory is not None
        [name] = self.client.list_indexes(COLLECTION)
        info = self.client.describe_index(COLLECTION, name)
        state = self.client.get_load_state(COLLECTION).get("state")
        segments = sorted(self.directory.rglob("data_*.parquet"))
        files = self.index_files()
        if (info.get("index_type") != self.index_type or info.get("state") != "Finished"
                or int(info.get("indexed_rows", -1)) != n or "Loaded" not in str(state)
                or not files or len(files) < len(segments)):
            raise RuntimeError(f"{self.name}: the index is not ready: {info}, load state {state}, "
                               f"{len(files)} index files for {len(segments)} segments")
        self._additional = {"segments": len(segments), "index_size_kb": self.get_memory_usage()}

    def _search(self, Q: list, k: int, client: MilvusClient | None = None, where: str = "") -> list:
        """The search of Q through `client` (default: the one fit built with)."""
        client = client or self.client
        assert client is not None
        return client.search(COLLECTION, data=Q, filter=where, limit=k, search_params=self.search_params,
                             output_fields=[])

    @staticmethod
    def _ids(hits) -> np.ndarray:
        return np.fromiter((hit["id"] for hit in hits), dtype=np.int64, count=len(hits))

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self._ids(self._search([np.asarray(q, dtype=np.float32)], k)[0])

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        """Milvus's filter expression, a pre-filter of the index search (see the module doc)."""
        where = f"{LABEL} >= {int(allowed.lo)} and {LABEL} < {int(allowed.hi)}"
        return self._ids(self._search([np.asarray(q, dtype=np.float32)], k, where=where)[0])

    def open_client(self) -> Client:
        """A MilvusClient of its own: its own gRPC channel to the server of this index's .db."""
        assert self.directory is not None
        client = MilvusClient(str(self.directory / DB_FILE))
        return Client(query=lambda q, k: self._ids(self._search([np.asarray(q, dtype=np.float32)], k, client)[0]),
                      close=client.close)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        set_openmp_threads(self.threads)
        try:
            Q = np.ascontiguousarray(Q, dtype=np.float32)
            self._batch_results = [self._ids(hits) for hits in self._search(list(Q), k)]
        finally:
            set_openmp_threads(1)

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()
            assert self.directory is not None
            server_manager_instance.release_server(str(self.directory / DB_FILE))


class MilvusHNSW(_Milvus):
    index_type = "HNSW"

    def __init__(self, metric: str, M: int, efConstruction: int):
        super().__init__(metric)
        self.M = int(M)
        self.ef_construction = int(efConstruction)

    def build_params(self) -> dict:
        return {"M": self.M, "efConstruction": self.ef_construction}

    def set_query_arguments(self, ef: int) -> None:
        self.search_params = {"metric_type": self.metric_type, "params": {"ef": int(ef)}}


class MilvusIVF(_Milvus):
    index_type = "IVF_FLAT"

    def __init__(self, metric: str, nlist: int):
        super().__init__(metric)
        self.nlist = int(nlist)

    def build_params(self) -> dict:
        return {"nlist": self.nlist}

    def set_query_arguments(self, nprobe: int) -> None:
        self.search_params = {"metric_type": self.metric_type, "params": {"nprobe": int(nprobe)}}
