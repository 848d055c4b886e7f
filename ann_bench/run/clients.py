"""The concurrent query phase (run.py --clients N): N clients query one built index at once.

A burst answers every test query at least once: client c takes queries c, c+N, c+2N, ... and,
with a duration, goes round its share again, in whole rounds, until the duration has passed.
Each client first answers one query untimed (a new connection prepares its statement, a new
thread warms its caches), then all start together. Each query is timed as in a single-query
pass (the runner's time_single, handed in so that its clock placement is the one used); the
burst's wall time runs from the earliest client's start to the latest client's end, so the
aggregate QPS is queries answered / wall time. Recall is scored on each query's first answer.

How the clients run is the wrapper's declaration `clients` (algorithms/base.py): "threads"
share the wrapper; "processes" are forked after the build and share the index copy-on-write;
"connections" are threads that each query through a connection of their own (open_client).
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..algorithms.base import BaseANN, Client

Query = Callable[[np.ndarray, int], Any]
TimedPass = Callable[[Query, list, int], tuple[list, list]]


class ClientFailed(Exception):
    """A client process ended without sending what it measured."""


@dataclass
class Share:
    """What one client measured: its start and end (perf_counter_ns: CLOCK_MONOTONIC, one
    clock for every process of the machine), the latency (ns) and the first answer of each
    query of its share, and how many queries it answered in all."""

    start: int
    end: int
    times: list
    answers: list
    answered: int


@dataclass
class Burst:
    wall_ns: int
    times_ns: np.ndarray  # per test query: the latency of its first answer
    answers: list  # per test query: its first answer
    answered: int  # queries answered by all clients together


def _run_share(query: Query, rows: list, k: int, duration_ns: int | None, timed_pass: TimedPass,
               ready: Callable[[], Any]) -> Share:
    if rows:
        query(rows[0], k)
    ready()
    start = time.perf_counter_ns()
    times, answers = timed_pass(query, rows, k)
    answered = len(rows)
    while rows and duration_ns is not None and time.perf_counter_ns() - start < duration_ns:
        timed_pass(query, rows, k)
        answered += len(rows)
    return Share(start, time.perf_counter_ns(), times, answers, answered)


def _in_threads(queries: list[Query], shares: list[list], k: int, duration_ns: int | None,
                timed_pass: TimedPass) -> list[Share]:
    barrier = threading.Barrier(len(shares))
    measured: list[Share | None] = [None] * len(shares)
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            measured[c] = _run_share(queries[c], shares[c], k, duration_ns, timed_pass, barrier.wait)
        except BaseException as e:  # raised in the caller's thread below, as one client alone would
            errors.append(e)
            barrier.abort()  # the others must not wait for this one

    threads = [threading.Thread(target=client, args=(c,), name=f"client-{c}") for c in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if errors:
        raise (real or errors)[0]
    return [share for share in measured if share is not None]


def _in_processes(query: Query, shares: list[list], k: int, duration_ns: int | None,
                  timed_pass: TimedPass) -> list[Share]:
    """One forked process per share. Each reads one byte of the go pipe to start and sends its
    Share (or the exception it raised) back pickled; it leaves by os._exit, so nothing the
    parent owns (files, connections, atexit hooks) is closed or run twice."""
    go_read, go_write = os.pipe()
    children: list[tuple[int, int]] = []
    try:
        for c, rows in enumerate(shares):
            out_read, out_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:  # whatever happens, this process ends here and never runs on as a copy of the worker
                    os.close(out_read)
                    os.close(go_write)
                    _client_process(c, query, rows, k, duration_ns, timed_pass, go_read, out_write)
                finally:
                    os._exit(0)
            os.close(out_write)
            children.append((pid, out_read))
        os.write(go_write, b"g" * len(shares))
    except BaseException:  # a fork failed: the clients started so far see the pipe close, and stop
        os.close(go_write)
        for pid, out_read in children:
            os.close(out_read)
            os.waitpid(pid, 0)
        raise
    else:
        os.close(go_write)
    finally:
        os.close(go_read)
    outcomes: list[Share | Exception] = []
    for c, (pid, out_read) in enumerate(children):
        with os.fdopen(out_read, "rb") as out:
            data = out.read()
        _, status = os.waitpid(pid, 0)
        outcomes.append(pickle.loads(data) if data else
                        ClientFailed(f"client {c} ended without answering ({_exit_text(status)})"))
    measured = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
        measured.append(outcome)
    return measured


def _client_process(c: int, query: Query, rows: list, k: int, duration_ns: int | None, timed_pass: TimedPass,
                    go_read: int, out_write: int) -> None:
    try:
        outcome: Any = _run_share(query, rows, k, duration_ns, timed_pass, lambda: _wait_for_start(go_read))
    except Exception as e:
        outcome = e
    except BaseException as e:  # SystemExit, KeyboardInterrupt: not to be raised again in the worker
        outcome = ClientFailed(f"client {c} ended: {type(e).__name__}: {e}")
    try:
        data = pickle.dumps(outcome)
    except Exception as e:  # an exception that does not pickle: its text does
        data = pickle.dumps(ClientFailed(f"client {c}: {type(outcome).__name__}: {outcome} ({e})"))
    with os.fdopen(out_write, "wb") as out:
        out.write(data)


def _wait_for_start(go_read: int) -> None:
    if not os.read(go_read, 1):
        raise ClientFailed("the worker stopped the clients before they started")


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _with_connections(algo: BaseANN, shares: list[list], k: int, duration_ns: int | None,
                      timed_pass: TimedPass) -> list[Share]:
    opened: list[Client] = []
    try:
        for _ in shares:
            opened.append(algo.open_client())
        return _in_threads([client.query for client in opened], shares, k, duration_ns, timed_pass)
    finally:
        for client in opened:
            client.close()


def run_burst(algo: BaseANN, rows: list, k: int, n_clients: int, duration: float | None,
              timed_pass: TimedPass) -> Burst:
    """n_clients query `rows` at once, as the wrapper declares; see the module's doc."""
    positions = [list(range(c, len(rows), n_clients)) for c in range(n_clients)]
    shares = [[rows[i] for i in share] for share in positions]
    duration_ns = None if duration is None else int(duration * 1e9)
    if algo.clients == "threads":
        measured = _in_threads([algo.query] * n_clients, shares, k, duration_ns, timed_pass)
    elif algo.clients == "connections":
        measured = _with_connections(algo, shares, k, duration_ns, timed_pass)
    else:
        measured = _in_processes(algo.query, shares, k, duration_ns, timed_pass)
    times = np.zeros(len(rows), dtype=np.float64)
    answers: list[Any] = [None] * len(rows)
    for share, got in zip(positions, measured):
        times[share] = got.times
        for i, answer in zip(share, got.answers):
            answers[i] = answer
    wall = max(got.end for got in measured) - min(got.start for got in measured)
    return Burst(wall, times, answers, sum(got.answered for got in measured))
