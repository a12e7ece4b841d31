"""bench/elmo.py: the fast Kneser-Ney scores equal nltk's."""

import importlib.util
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "elmo.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_elmo", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = [
    "the cat sat on the mat".split(),
    "the dog sat on the log".split(),
    "a cat saw the dog".split(),
    "the mat".split(),
]


@pytest.mark.parametrize("discount", [0.1, 0.75])
def test_fast_kneser_ney_matches_nltk(bench, discount):
    lm = bench.fit_trigram(CORPUS)
    lm.estimator.discount = discount  # nltk reads it on every call
    fast = bench.FastKneserNey(lm)
    held_out = ["the dog saw a mat".split(), "mat on cat".split(), "zebra sat".split()]
    events = list(bench.trigram_events(held_out))
    assert len(events) == sum(len(s) + 1 for s in held_out)
    for word, context in events:  # seen and unseen contexts, an unknown word
        assert math.isclose(lm.score(word, context), fast.score(word, context), rel_tol=1e-12)
    total = sum(fast.score(w, ("the", "cat")) for w in lm.vocab)
    assert math.isclose(total, 1.0, rel_tol=1e-9)


def test_the_shipped_results_agree_with_the_report_and_the_checkpoint():
    """src/lessons/results/elmo.json (read by chapter 2), bench/results/elmo.txt (the
    report) and the biLM checkpoint's training notes say the same numbers."""
    import re

    from lessons.core.checkpoint import checkpoint_notes
    from lessons.core.results import load_results
    from lessons.elmo import PRETRAINED_DIR

    results = load_results("elmo")
    assert results["_about"]["command"].startswith("bench/elmo.py")
    report = (BENCH.parent / "results" / "elmo.txt").read_text(encoding="utf-8")

    def row(label: str) -> tuple[str, str]:
        match = re.search(re.escape(label) + r"(?: \([^)\d]*\))?\s+([\d.]+)\s+([\d.]+)\n", report)
        assert match, label
        return match[1], match[2]

    def printed(pair: dict) -> tuple[str, str]:  # as the report prints them
        return f"{pair['forward']:.1f}", f"{pair['backward']:.1f}"

    assert row("biLM (ours, scripts/train_elmo.py)") == printed(
        results["bilm_validation_perplexity"]
    )
    for discount, pair in results["trigram_validation_perplexity"].items():
        assert row(f"Kneser-Ney trigram, discount {discount}") == printed(pair)
    forward, backward = printed(results["bilm_train_perplexity"])
    assert f"forward {forward}, backward {backward}" in report
    assert f"{results['predicted_tokens_per_direction']} predicted tokens" in report
    assert f"{results['bilm_parameters']:,} parameters" in report
    notes = checkpoint_notes(PRETRAINED_DIR / "elmo-small.safetensors")  # rounded to 0.1
    assert printed(notes["validation_perplexity"]) == printed(results["bilm_validation_perplexity"])
