import json
import os

import numpy as np
import pytest

from ann_bench.results.files import (
    RunResult,
    load_results,
    params_name,
    read_result,
    result_path,
    status_of,
    write_result,
)


def sample(status="ok"):
    return RunResult(
        attrs={"name": "x(M=4)", "algo": "x", "count": 10, "status": status, "build_args": {"M": 4},
               "query_args": [40], "environment": {"cpu_model": "test"}, "batch_mode": False},
        neighbors=np.arange(20, dtype=np.int32).reshape(2, 10),
        distances=np.linspace(0, 1, 20, dtype=np.float32).reshape(2, 10),
        times=np.array([1e-4, 2e-4]),
        run_times=np.array([3e-4, 4e-4, 5e-4]),
    )


def test_round_trip(tmp_path):
    path = write_result(tmp_path / "a" / "r.hdf5", sample())
    back = read_result(path)
    assert back.ok and back.attrs["name"] == "x(M=4)" and back.attrs["count"] == 10
    assert back.build_args == {"M": 4} and back.query_args == [40]
    assert back.environment == {"cpu_model": "test"}
    np.testing.assert_array_equal(back.neighbors, sample().neighbors)
    np.testing.assert_array_equal(back.run_times, sample().run_times)
    assert back.attrs["batch_mode"] is False or back.attrs["batch_mode"] == np.False_


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.hdf5"
    write_result(path, sample())
    assert os.listdir(tmp_path) == ["r.hdf5"]


def test_failed_write_leaves_old_file_whole(tmp_path):
    path = write_result(tmp_path / "r.hdf5", sample())
    broken = sample()
    broken.extra = {"bad": object()}  # h5py cannot store this: the write fails midway
    with pytest.raises(TypeError):
        write_result(path, broken)
    assert read_result(path).ok and os.listdir(tmp_path) == ["r.hdf5"]


@pytest.mark.parametrize("a, b", [
    (({"M": 4}, {"ef": 10}), ({"M": 4}, {"ef": 100})),
    (({"p": "a/b"}, []), ({"p": "a_b"}, [])),             # same after sanitising the name
    (([1, 2], [3]), ([1], [2, 3])),                       # same digits, other split
    (({"x": 1}, []), ({"x": 1.0}, [])),                   # int and float differ
    (({"long": "v" * 200}, []), ({"long": "v" * 199 + "w"}, [])),  # differ after the cut
])
def test_different_parameters_never_share_a_file(a, b):
    assert params_name(*a) != params_name(*b)


def test_same_parameters_same_file_regardless_of_key_order():
    assert params_name({"a": 1, "b": 2}, {}) == params_name({"b": 2, "a": 1}, {})


def test_layout_and_listing(tmp_path):
    path = result_path(tmp_path, "ds", 10, "algo", True, {"M": 4}, [40])
    assert path.parent == tmp_path / "ds" / "10" / "algo-batch"
    write_result(path, sample())
    write_result(result_path(tmp_path, "ds", 10, "algo", False, {"M": 8}, [40]), sample("failed"))
    assert [r.path for r in load_results(tmp_path, "ds", 10)] == [path]
    assert len(list(load_results(tmp_path, "ds", 10, include_failed=True))) == 2
    assert list(load_results(tmp_path, "ds", 10, batch=False)) == []
    assert status_of(path) == "ok" and status_of(tmp_path / "none.hdf5") is None


def test_environment_stored_as_json(tmp_path):
    path = write_result(tmp_path / "r.hdf5", sample())
    import h5py
    with h5py.File(path) as f:
        assert json.loads(f.attrs["environment"]) == {"cpu_model": "test"}
