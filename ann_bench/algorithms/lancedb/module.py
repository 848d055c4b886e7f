"""LanceDB (embedded, a table in a temporary directory): IVF-PQ with refine, and IVF-HNSW-SQ.

- LanceIVFPQ: build arguments num_partitions (IVF cells) and num_sub_vectors (PQ codes of 8
  bits each); query arguments nprobes (cells visited) and refine_factor (LanceDB fetches
  refine_factor * k candidates by their PQ distance and re-ranks them with the full vectors).
  LanceDB wants num_sub_vectors to divide the dimension: the largest divisor of the dimension
  not above the value asked for is used, with a printed note (glove-100's 16 becomes 10).
- LanceHNSWSQ: IVF_HNSW_SQ, build arguments num_partitions, m and ef_construction (an HNSW
  graph over 8-bit scalar-quantized vectors in each partition); query arguments ef and
  refine_factor. Every partition is searched (nprobes = num_partitions). The graph search
  proposes k * refine_factor candidates by their SQ distance, re-ranked by the full vectors
  (refine_factor 1 only re-ranks the k answers, so they come nearest first; its recall stops
  short of 1, as SQ distances swap near neighbours at the k-th place); LanceDB wants ef at
  least k * refine_factor, and a smaller ef is raised to that.
Metrics: euclidean l2, angular cosine, dot dot (the vectors go in as given).

fit(): create the table from one Arrow table, create_index (synchronous for a local table),
then check that the index covers every row (index_stats: no unindexed row, which LanceDB would
otherwise scan by brute force) and that the query plan uses it (explain_plan names the ANN
index; with labels, the filtered plan names the label index too). Build time (the runner's
timer around fit) is all of it.

Streaming (supports_insert, supports_delete): the first insert is fit's build, under the ids
given. LanceDB's table.add does not touch the ANN index: a search scans the rows added since
the index was made by brute force (flat) and merges them with the index's answers. So a later
insert is table.add then table.optimize(), which compacts the files and adds the new rows to
the existing index (into its trained partitions, without retraining them), and searches go on
using the index. The partitions are those trained on the first insert's rows, and LanceDB
trains fewer than asked when those are few (3 of 32 on 900 rows, it logs); faiss-ivf's cells
too are trained on the first insert only. A delete is table.delete("id IN (...)"): the rows are marked deleted, and
searches skip them.

Index size: get_memory_usage() returns the size of the index's files under the table's
_indices directory in kB (0 before they exist), so the runner's index_size is the engine's
index on disk; get_additional repeats it as index_size_kb.

Filtered search: with labels the table gets a `label` column with a BTREE scalar index, and a
filtered query is the vector search with `.where("label >= lo AND label < hi", prefilter=True)`:
LanceDB evaluates the filter first and searches the index among the rows that pass.

Concurrent clients (run.py --clients) are connections: each client opens the table of its own
(lancedb.connect on the directory, open_table) and searches it with the same arguments.

Threads: LanceDB's compute pool is sized from LANCE_CPU_THREADS, read once when its runtime
starts; this module sets it (unless the user did) to the threads this worker was given before
importing lancedb. Single queries and batches use that pool (one core in a default sweep);
batch_query sends every query in one request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..base import Client, allowed_threads
from ..filtering import LabelRange
from ..ondisk import DiskIndex

os.environ.setdefault("LANCE_CPU_THREADS", str(allowed_threads()))
os.environ.setdefault("LANCE_IO_THREADS", str(max(2, allowed_threads())))

import lancedb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from lancedb.index import BTree, HnswSq, IvfPq  # noqa: E402

if TYPE_CHECKING:
    from lancedb.table import Table

DISTANCE_TYPES: dict[str, Literal["l2", "cosine", "dot"]] = {"euclidean": "l2", "angular": "cosine", "dot": "dot"}
TABLE = "items"
VECTOR = "vector"
LABEL = "label"


def largest_divisor_at_most(d: int, wanted: int) -> int:
    return max(s for s in range(1, max(1, min(wanted, d)) + 1) if d % s == 0)


class _Lance(DiskIndex):
    metrics = tuple(DISTANCE_TYPES)
    point_types = ("float",)
    supports_batch = True
    supports_insert = True
    supports_delete = True
    supports_filter = True
    package = "lancedb"
    clients = "connections"

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.distance_type = DISTANCE_TYPES[metric]
        self.table: Table | None = None
        self._labels: np.ndarray | None = None  # a filtered set's: a label column

    def index_config(self, n: int, d: int):
        raise NotImplementedError

    def _tune(self, query, k: int):
        """The query builder with this index's search arguments."""
        raise NotImplementedError

    def fit(self, X: np.ndarray) -> None:
        self._build(X, np.arange(len(X)))

    def _build(self, X: np.ndarray, ids: np.ndarray) -> None:
        """fit's work, the rows under `ids`: a streaming run's first insert is the build."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        n, d = X.shape
        db = lancedb.connect(str(self.make_directory()))
        self.table = db.create_table(TABLE, data=self._rows(X, ids))
        self.table.create_index(VECTOR, config=self.index_config(n, d))
        if self._labels is not None:
            self.table.create_index(LABEL, config=BTree())
        self._check_index(n, X[0])

    def _rows(self, X: np.ndarray, ids: np.ndarray) -> pa.Table:
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), type=pa.float32()), X.shape[1])
        ids = np.asarray(ids, dtype=np.int64)
        columns = {"id": pa.array(ids), VECTOR: vectors}
        if self._labels is not None:
            columns[LABEL] = pa.array(np.asarray(self._labels, dtype=np.int32)[ids])
        return pa.table(columns)

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """The first call is the build; later ones add the rows, then optimize() puts them in
        the index (see the module doc)."""
        if self.table is None:
            self._build(X, ids)
            return
        self.table.add(self._rows(np.ascontiguousarray(X, dtype=np.float32), ids))
        self.table.optimize()

    def delete(self, ids: np.ndarray) -> None:
        assert self.table is not None
        self.table.delete(f"id IN ({', '.join(map(str, ids.tolist()))})")

    def _check_index(self, n: int, q: np.ndarray) -> None:
        assert self.table is not None
        indices = [index for index in self.table.list_indices() if list(index.columns) == [VECTOR]]
        stats = self.table.index_stats(indices[0].name) if indices else None
        query = self._query(q, 10)
        if self._labels is not None:  # the filtered plan: the ANN index searched among the label index's rows
            query = self._filtered(query, LabelRange(0, 1))
        plan = query.explain_plan(verbose=True)
        if (stats is None or stats.num_indexed_rows != n or stats.num_unindexed_rows != 0 or "ANN" not in plan
                or (self._labels is not None and "ScalarIndexQuery" not in plan)):
            raise RuntimeError(f"{self.name}: the index does not cover the table: {stats}; plan: {plan}")
        self._additional = {"index_type": stats.index_type, "index_parts": stats.num_indices,
                            "index_size_kb": self.get_memory_usage()}

    def index_files(self) -> list[Path]:
        """The files of the table's indexes; see the module doc."""
        assert self.directory is not None
        return list(self.directory.glob(f"{TABLE}.lance/_indices/**/*"))

    def _query(self, q: np.ndarray | list[np.ndarray], k: int, table: Table | None = None) -> Any:
        """The search of q in `table` (default: the one fit built) with this index's arguments."""
        table = table or self.table
        assert table is not None
        # A vector search's builder; the type of Table.search covers every kind of search.
        search: Any = table.search(q, vector_column_name=VECTOR)
        return self._tune(search.distance_type(self.distance_type), k).limit(k).select(["id", "_distance"])

    @staticmethod
    def _ids(query: Any) -> np.ndarray:
        return query.to_arrow().column("id").to_numpy().astype(np.int64, copy=False)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self._ids(self._query(np.asarray(q, dtype=np.float32), k))

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    @staticmethod
    def _filtered(query: Any, allowed: LabelRange) -> Any:
        """LanceDB's prefilter: the WHERE clause picks the rows the index search may return."""
        return query.where(f"{LABEL} >= {int(allowed.lo)} AND {LABEL} < {int(allowed.hi)}", prefilter=True)

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        return self._ids(self._filtered(self._query(np.asarray(q, dtype=np.float32), k), allowed))

    def open_client(self) -> Client:
        """A table handle of its own, from a connection of its own to the table's directory
        (LanceDB's handles have no close: they are let go with the client)."""
        assert self.directory is not None
        table = lancedb.connect(str(self.directory)).open_table(TABLE)
        return Client(query=lambda q, k: self._ids(self._query(np.asarray(q, dtype=np.float32), k, table)),
                      close=lambda: None)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        # A list of vectors is one request; rows carry the query's position in query_index.
        result = self._query(list(np.asarray(Q, dtype=np.float32)), k).to_arrow()
        which = result.column("query_index").to_numpy()
        ids = result.column("id").to_numpy().astype(np.int64, copy=False)
        distances = result.column("_distance").to_numpy()
        answers = []
        for i in range(len(Q)):
            mine = np.flatnonzero(which == i)
            answers.append(ids[mine[np.argsort(distances[mine], kind="stable")]])
        self._batch_results = answers

    def close(self) -> None:
        self.table = None


class LanceIVFPQ(_Lance):
    def __init__(self, metric: str, num_partitions: int, num_sub_vectors: int):
        super().__init__(metric)
        self.num_partitions = int(num_partitions)
        self.num_sub_vectors = int(num_sub_vectors)
        self.nprobes, self.refine_factor = 20, 1

    def index_config(self, n: int, d: int):
        sub_vectors = largest_divisor_at_most(d, self.num_sub_vectors)
        if sub_vectors != self.num_sub_vectors:
            print(f"{self.name}: num_sub_vectors {self.num_sub_vectors} does not divide the dimension {d}; "
                  f"using {sub_vectors}")
        return IvfPq(distance_type=self.distance_type, num_partitions=self.num_partitions,
                     num_sub_vectors=sub_vectors)

    def set_query_arguments(self, nprobes: int, refine_factor: int) -> None:
        self.nprobes, self.refine_factor = int(nprobes), int(refine_factor)

    def _tune(self, query, k: int):
        return query.nprobes(self.nprobes).refine_factor(self.refine_factor)


class LanceHNSWSQ(_Lance):
    def __init__(self, metric: str, num_partitions: int, m: int, ef_construction: int):
        super().__init__(metric)
        self.num_partitions = int(num_partitions)
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self.ef, self.refine_factor = 40, 1

    def index_config(self, n: int, d: int):
        return HnswSq(distance_type=self.distance_type, num_partitions=self.num_partitions, m=self.m,
                      ef_construction=self.ef_construction)

    def set_query_arguments(self, ef: int, refine_factor: int) -> None:
        self.ef, self.refine_factor = int(ef), int(refine_factor)

    def _tune(self, query, k: int):
        return (query.nprobes(self.num_partitions).ef(max(self.ef, k * self.refine_factor))
                .refine_factor(self.refine_factor))
