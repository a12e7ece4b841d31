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
