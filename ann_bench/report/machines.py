"""Which machines made a set of results: named by host and CPU model, so that results of
different machines (a sweep spread over a cluster, files gathered from elsewhere) are never
mixed without a word."""

from __future__ import annotations

from collections import Counter
from typing import Iterable


def machine(environment: dict) -> str:
    """"host (CPU model)"; what a file does not record is left out ("unknown" when nothing is)."""
    host, cpu = environment.get("host", ""), environment.get("cpu_model", "")
    if host and cpu:
        return f"{host} ({cpu})"
    return host or cpu or "unknown"


def machines(environments: Iterable[dict]) -> Counter[str]:
    """How many results each machine made."""
    return Counter(machine(environment) for environment in environments)


def made_on(counts: Counter[str]) -> str:
    """One line: "made on 2 machines: a (X) 3 results; b (Y) 2 results"."""
    parts = "; ".join(f"{name}: {n} result{'s' * (n != 1)}" for name, n in sorted(counts.items()))
    return f"made on {len(counts)} machine{'s' * (len(counts) != 1)}: {parts}"
