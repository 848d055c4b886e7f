"""What the report command lines (plot.py, export, the site) share: names, messages, options."""

from __future__ import annotations

import argparse
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from .. import datasets
from .. import log as logsetup
from ..atomic import write_atomically
from ..errors import UnknownNameError
from ..paths import PYTHON
from ..results.files import iter_result_paths

DEFAULT_COUNT = 10


def mode_label(batch: bool | None) -> str:
    return {True: "batch", False: "single queries", None: "single queries or batch"}[batch]


def run_command(dataset: str, count: int, batch: bool, results_dir: Path | str = "results") -> str:
    command = f"{PYTHON} run.py --dataset {dataset}"
    if count != DEFAULT_COUNT:
        command += f" --count {count}"
    if batch:
        command += " --batch"
    if Path(results_dir) != Path("results"):
        command += f" --results {results_dir}"
    return command


def no_results_message(results_dir: Path | str, dataset: str, count: int, batch: bool | None) -> str:
    searched = Path(results_dir) / dataset / str(count)
    failed = sum(1 for _ in iter_result_paths(results_dir, dataset, count, batch))
    what = f"only {failed} failed results" if failed else "no results"
    return (f"{what} for {dataset} (k={count}, {mode_label(batch)}) in {searched}/"
            f"{'*-batch' if batch else '*'}; make some with: {run_command(dataset, count, bool(batch), results_dir)}")


def dataset_name(name: str, data_dir: Path | str, results_dir: Path | str) -> str:
    """The registered name for name; an unregistered one is taken as given when its dataset
    file or results exist (a custom dataset), otherwise UnknownNameError says what is close."""
    try:
        return datasets.resolve_name(name)
    except UnknownNameError:
        if (Path(data_dir) / f"{name}.hdf5").is_file() or (Path(results_dir) / name).is_dir():
            return name
        raise


def result_groups(results_dir: Path | str) -> list[tuple[str, int, list[bool]]]:
    """(dataset, k, modes) for every results/<dataset>/<k>/ that holds result files, sorted;
    modes lists False (single queries) and/or True (batch), as their directories exist (none
    where there are only concurrent clients' results, -c<N>)."""
    groups = []
    root = Path(results_dir)
    if not root.is_dir():
        return []
    for dataset_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        counts = sorted(int(d.name) for d in dataset_dir.iterdir() if d.is_dir() and d.name.isdigit())
        for count in counts:
            modes = [batch for batch in (False, True)
                     if next(iter_result_paths(root, dataset_dir.name, count, batch), None) is not None]
            if modes or next(iter_result_paths(root, dataset_dir.name, count, clients=True), None) is not None:
                groups.append((dataset_dir.name, count, modes))
    return groups


def executor_of(row: dict) -> str:
    """Where a metrics row's run was made (docker, local), from its environment; "" for a file
    from a harness that did not record it."""
    return str((row.get("environment") or {}).get("executor", ""))


def mixed_executors(rows: list[dict]) -> set[str]:
    """The algorithms with runs from more than one executor (Docker and local processes): their
    runs are drawn as one frontier per executor, since their QPS are not comparable."""
    seen: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        seen[row["algorithm"]].add(executor_of(row))
    return {algorithm for algorithm, executors in seen.items() if len(executors) > 1}


def series_name(row: dict, mixed: set[str]) -> str:
    """The legend's name of a run's frontier: its algorithm, and where it ran when that varies."""
    if row["algorithm"] not in mixed:
        return row["algorithm"]
    return f"{row['algorithm']} ({executor_of(row) or 'executor not recorded'})"


def drawn_hollow(row: dict, mixed: set[str]) -> bool:
    """Whether a run's frontier has hollow markers: a run in local processes, of an algorithm
    that has runs in Docker too, so that the two frontiers of one colour are told apart."""
    return row["algorithm"] in mixed and executor_of(row) == "local"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Where results and datasets are, and how much to say: the same in every report command."""
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR", help="results directory")
    p.add_argument("--data-dir", type=Path, default=Path("data"), metavar="DIR", help="datasets directory")
    logsetup.add_arguments(p)


def save_figure(fig: Any, output: Path, dpi: float | None = None) -> Path:
    """A matplotlib figure written atomically in the format of the output's suffix; SVG and PDF
    without a creation date, so the same results give the same bytes."""
    fmt = output.suffix.lstrip(".").lower() or "png"
    image = io.BytesIO()
    fig.savefig(image, format=fmt, dpi=dpi, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
    return write_atomically(output, image.getvalue())
