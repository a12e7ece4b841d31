"""bench/reformer_attention.py and bench/reformer_duplication.py: the saved results agree
with what they claim to be, and with the shipped duplication models.

Peak memory of the feed-forward sublayer is deterministic, so one row is measured again
here; timings are only checked to be recorded and used consistently (crossovers, slopes).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from lessons import reformer
from lessons.core.checkpoint import checkpoint_notes
from lessons.core.results import load_results

pytestmark = pytest.mark.usefixtures("one_thread")

BENCH = Path(__file__).resolve().parent.parent / "bench"
MiB = 2**20


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def attention():
    return load_results("reformer_attention")


@pytest.fixture(scope="module")
def duplication():
    return load_results("reformer_duplication")


# --------------------------------------------------------------------------------------
# Attention cost against length
# --------------------------------------------------------------------------------------


def test_attention_results_cover_the_bench_lengths(attention):
    bench = load_bench("reformer_attention")
    cost = attention["attention"]
    assert cost["lengths"] == list(bench.LENGTHS)
    assert set(cost["seconds"]) == {"full", "sdpa", "lsh-1", "lsh-2", "lsh-4", "lsh-8"}
    for kind in cost["seconds"]:
        assert len(cost["seconds"][kind]) == len(cost["peak_bytes"][kind]) == len(bench.LENGTHS)
        assert all(seconds > 0 for seconds in cost["seconds"][kind])
    assert attention["threads"] == 1


def test_slopes_and_crossovers_follow_from_the_numbers(attention):
    bench = load_bench("reformer_attention")
    cost = attention["attention"]
    for kind, seconds in cost["seconds"].items():
        assert cost["slopes"]["seconds"][kind] == pytest.approx(
            bench.slope(cost["lengths"], seconds, cost["fit_from"])
        )
    for kind, length in cost["crossover"].items():
        assert length == bench.crossover(
            cost["lengths"], cost["seconds"][kind], cost["seconds"]["full"]
        )


def test_memory_grows_as_the_chapter_says(attention):
    """Materialised full attention about quadratically; LSH attention between linearly and
    quadratically (its hash grows as L * num_buckets, and num_buckets as L), in
    proportion to its rounds; the fused kernel linearly."""
    slopes = attention["attention"]["slopes"]["peak_bytes"]
    assert slopes["full"] > 1.8
    assert 0.9 < slopes["sdpa"] < 1.1
    for rounds in (1, 2, 4, 8):
        assert 1.0 < slopes[f"lsh-{rounds}"] < 1.5
    peaks = attention["attention"]["peak_bytes"]
    longest = -1
    assert peaks["lsh-8"][longest] / peaks["lsh-1"][longest] == pytest.approx(8, rel=0.15)


def test_one_feed_forward_peak_is_reproduced(attention):
    """The 4,096-position chunk at L = 16,384 (deterministic bytes, measured again)."""
    bench = load_bench("reformer_attention")
    ff = attention["feed_forward"]
    again = bench.feed_forward_peaks(ff["length"], (4096,))
    assert again["rows"][1] == ff["rows"][1]
    whole, *chunked = ff["rows"]
    assert whole["peak_bytes"] >= 2 * whole["intermediate_bytes"]  # linear and ReLU outputs
    assert [row["peak_bytes"] for row in chunked] == sorted(
        (row["peak_bytes"] for row in chunked), reverse=True
    )
    for row in chunked:
        assert row["peak_bytes"] >= row["output_bytes"]


# --------------------------------------------------------------------------------------
# The duplication task
# --------------------------------------------------------------------------------------


def test_the_table_is_evaluated_on_the_shipped_models(duplication):
    assert set(duplication["table"]) == {"full", "lsh1", "lsh2", "lsh4"}
    for trained, scores in duplication["table"].items():
        assert set(scores) == {"full", "lsh-8", "lsh-4", "lsh-2", "lsh-1"}
        notes = checkpoint_notes(reformer.pretrained_path(f"duplication-{trained}"))
        assert duplication["curves"][trained] == notes["log"]
        assert duplication["training"][trained]["steps"] == notes["steps"]
        assert notes["w"] == duplication["w"]


def test_one_table_cell_is_reproduced(duplication):
    """The first test batch of the full-attention model, with full attention and LSH-1."""
    bench = load_bench("reformer_duplication")
    generator = torch.Generator().manual_seed(2)
    batch = reformer.duplication_batch(bench.BATCH_SIZE, duplication["w"], 64, generator)
    model = reformer.load_pretrained("duplication-full")
    scores = duplication["table"]["full"]
    full = reformer.duplication_accuracy(model, batch, "full")
    assert math.isclose(full, scores["full"]["mean"], abs_tol=3 * scores["full"]["se"] + 1e-9)
    lsh = reformer.duplication_accuracy(model, batch, "lsh", 1, seed=0)
    assert abs(lsh - scores["lsh-1"]["mean"]) < 5 * scores["lsh-1"]["se"] + 0.02


def test_accuracy_rises_with_rounds_for_every_trained_model(duplication):
    for scores in duplication["table"].values():
        means = [scores[f"lsh-{r}"]["mean"] for r in (1, 2, 4, 8)]
        assert means == sorted(means)
        assert means[-1] > 0.99
        assert means[0] > 20 * duplication["chance"]


def test_the_paper_table_is_the_papers(duplication):
    """Kitaev et al. (2020), Table 2, as published."""
    paper = duplication["paper_table"]
    assert paper["full"] == {"full": 100.0, "lsh-8": 94.8, "lsh-4": 92.5, "lsh-2": 76.9,
                             "lsh-1": 52.5}  # fmt: skip
    assert paper["lsh4"]["lsh-1"] == 91.9 and paper["lsh1"]["lsh-1"] == 77.9
    assert paper["lsh4"]["full"] == paper["lsh2"]["full"] == paper["lsh1"]["full"] == 0.8


@pytest.mark.parametrize("name", sorted(reformer.PRETRAINED))
def test_shipped_models_load_small_and_learned_the_task(name):
    path = reformer.pretrained_path(name)
    assert path.stat().st_size < 10 * 10**6
    model = reformer.load_pretrained(name)
    notes = checkpoint_notes(path)
    batch = reformer.duplication_batch(32, notes["w"], 64, torch.Generator().manual_seed(9))
    assert reformer.duplication_accuracy(model, batch, "lsh", 8, seed=0) > 0.98
