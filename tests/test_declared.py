"""What the host reads of a wrapper without importing it (ann_bench/algorithms/declared.py), and
the worker's check that the imported class agrees."""

import textwrap
import uuid

import pytest

from ann_bench.algorithms.declared import Declared, library_imports, read_declared
from ann_bench.errors import ConfigError
from ann_bench.run.definitions import Definition
from ann_bench.run.jobs import Job
from ann_bench.run.messages import receive
from ann_bench.run.runner import DeclarationMismatch, instantiate, run_job


def module(tmp_path, source: str, name: str = "module.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_literals_names_and_the_keys_of_a_dict_are_read(tmp_path):
    path = module(tmp_path, """\
        from ann_bench.algorithms.base import BaseANN

        SPACES = {"euclidean": object(), "angular": object()}
        KINDS = ["float", "bit"]


        class Thing(BaseANN):
            metrics = tuple(SPACES)
            point_types = KINDS
            supports_batch = True
            package = "thing"
        """)
    assert read_declared(path, "Thing") == Declared(("euclidean", "angular"), ("float", "bit"), True, "thing")


def test_what_a_class_does_not_say_comes_from_its_bases_in_mro_order(tmp_path):
    """Bases from the module and from ann_bench (DiskIndex -> IndexDirectory -> BaseANN, whose
    defaults fill the rest); a base two bases share comes once, after both, as in Python."""
    path = module(tmp_path, """\
        from ann_bench.algorithms.base import BaseANN
        from ann_bench.algorithms.ondisk import DiskIndex


        class Searching(BaseANN):
            supports_batch = True


        class Engine(DiskIndex):
            metrics = ("dot",)
            package = "engine"


        class Thing(Searching, Engine):
            pass
        """)
    assert read_declared(path, "Thing") == Declared(("dot",), ("float",), True, "engine", index_size="disk")


@pytest.mark.parametrize("statement, shown", [
    ("metrics = tuple(m for m in SPACES)", "tuple(m for m in SPACES)"),
    ("metrics = compute()", "compute()"),
    ("metrics = UNDEFINED", "UNDEFINED"),
])
def test_a_declaration_that_needs_running_is_an_error_naming_file_class_and_attribute(tmp_path, statement, shown):
    path = module(tmp_path, f"""\
        from ann_bench.algorithms.base import BaseANN
        SPACES = {{"euclidean": 1}}


        class Thing(BaseANN):
            {statement}
        """)
    with pytest.raises(ConfigError) as raised:
        read_declared(path, "Thing")
    message = str(raised.value)
    assert str(path) in message and "Thing.metrics" in message and shown in message


def test_a_base_the_host_cannot_read_is_an_error(tmp_path):
    path = module(tmp_path, """\
        from somewhere import Mixin
        from ann_bench.algorithms.base import BaseANN


        class Thing(Mixin, BaseANN):
            metrics = ("euclidean",)
        """)
    with pytest.raises(ConfigError, match="class Mixin: not defined in the module"):
        read_declared(path, "Thing")


def test_the_imports_an_image_must_run_are_the_installed_packages_of_the_module(tmp_path):
    path = module(tmp_path, """\
        from __future__ import annotations

        import os
        from pathlib import Path
        from typing import TYPE_CHECKING

        import numpy as np
        import scann
        from usearch.index import Index, Matches

        from ann_bench.algorithms.base import BaseANN
        from ..sets import as_items

        if TYPE_CHECKING:
            from lancedb.table import Table
        """)
    assert library_imports(path) == ["import numpy as np", "import scann", "from usearch.index import Index, Matches"]


# --- the worker's check -----------------------------------------------------------------------

CHANGES_ITSELF = """\
from ann_bench.algorithms.base import BaseANN


class Thing(BaseANN):
    metrics = ("euclidean",)
    package = "numpy"

    def __init__(self, metric, M=0):
        super().__init__()


# What the host reads is not what runs: the class gains a metric when imported.
Thing.metrics = Thing.metrics + ("angular",)
"""


@pytest.fixture
def changes_itself(tmp_path, monkeypatch):
    name = f"changes_itself_{uuid.uuid4().hex[:8]}"
    module(tmp_path, CHANGES_ITSELF, f"{name}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    return Definition(algorithm="thing", run_group="g", module=name, constructor="Thing", image="thing",
                      base_args=("angular",), query_args=({},))


def test_the_worker_refuses_a_class_that_is_not_what_the_host_read(changes_itself, tmp_path, xs_angular):
    with pytest.raises(DeclarationMismatch, match=r"Thing.metrics is \('euclidean', 'angular'\) when imported but "
                                                  r"\('euclidean',\) in"):
        instantiate(changes_itself)
    job = Job(definition=changes_itself, dataset="random-xs-20-angular", dataset_path=str(xs_angular),
              results_dir=str(tmp_path), count=10, batch=False, runs=1, query_args=[{}], environment={})
    assert run_job(job) is False
    [message] = receive(tmp_path).values()  # the worker's report to the host, which records the failure
    error = message.reason
    assert error.startswith("the wrapper changes its declarations when imported"), error


def test_the_worker_names_the_run_after_its_definition(tmp_path, monkeypatch):
    name = f"agrees_{uuid.uuid4().hex[:8]}"
    module(tmp_path, CHANGES_ITSELF.split("# What")[0], f"{name}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    definition = Definition(algorithm="thing", run_group="g", module=name, constructor="Thing", image="thing",
                            base_args=("euclidean",), args={"M": 4})
    assert instantiate(definition).name == "thing(M=4)"
