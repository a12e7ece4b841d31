"""lessons.core.results: measured results saved by scripts, read back by the chapters."""

import json

import pytest

from lessons.core import results


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    return tmp_path / "results"


def test_saved_results_read_back_with_where_they_came_from(results_dir):
    path = results.save_results("demo", {"ratio": 1.27, "rows": [1, 2]}, command="bench/demo.py")
    assert path == results_dir / "demo.json"
    loaded = results.load_results("demo")
    assert loaded["ratio"] == 1.27 and loaded["rows"] == [1, 2]
    assert loaded["_about"]["command"] == "bench/demo.py"
    assert set(loaded["_about"]) == {"command", "date", "python", "torch"}
    assert results.result_names() == ["demo"]
    assert list(results_dir.iterdir()) == [path]  # no temporary file left behind
    assert json.loads(path.read_text())["results"] == {"ratio": 1.27, "rows": [1, 2]}


def test_unknown_names_and_bad_values_are_refused(results_dir):
    results.save_results("demo", {"x": 1}, command="c")
    with pytest.raises(ValueError, match=r"name: expected one of \['demo'\], got 'demi'"):
        results.load_results("demi")
    with pytest.raises(ValueError, match="Out of range float values"):
        results.save_results("nan", {"x": float("nan")}, command="c")
    with pytest.raises(TypeError, match="command: expected a non-empty str"):
        results.save_results("demo", {}, command=None)


def test_every_shipped_result_loads():
    for name in results.result_names():
        assert "command" in results.load_results(name)["_about"]
