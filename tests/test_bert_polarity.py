"""scripts/finetune_polarity.py and its results: chapter 2's folds, outcomes that agree
with the fold accuracies, the frozen MiniLM number reproduced live, the report saying
the same numbers as the JSON, and fine-tuning that trains every weight, seeded."""

import importlib.util
from pathlib import Path

import pytest
import torch

from lessons.core import data
from lessons.core.probe import CrossValidation, cross_validate, stratified_folds
from lessons.core.results import load_results

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "finetune_polarity.py"
FROZEN = "MiniLM frozen, mean-pooled (sentence embedding)"
TUNED = "MiniLM fine-tuned, [CLS] pooled (BERT's head)"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("finetune_polarity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results():
    return load_results("bert_polarity")


@pytest.fixture(scope="module")
def labels():
    return torch.tensor([label for _, label in data.polarity()])


def test_the_folds_are_chapter_2s(results, labels):
    assert results["labels"] == labels.tolist()
    assert (results["folds"], results["repeats"], results["seed"]) == (10, 3, 0)
    assert results["fold_of"] == stratified_folds(labels, 10, 3, 0).tolist()


def test_every_method_has_30_folds_whose_outcomes_agree_with_its_accuracies(results):
    methods = results["methods"]
    assert {FROZEN, TUNED, "word2vec (mean)", "ELMo scalar mix"} <= set(methods)
    assert {row["kind"] for row in methods.values()} == {"frozen", "fine-tuned"}
    for name, row in methods.items():
        assert len(row["accuracies"]) == 30, name
        assert len(row["correct"]) == 3 and all(len(r) == 200 for r in row["correct"]), name
        rebuilt = CrossValidation.from_outcomes(row["correct"], results["fold_of"])
        assert rebuilt.accuracies == row["accuracies"], name
        assert rebuilt.mean == pytest.approx(row["mean"], abs=1e-12), name
        assert rebuilt.standard_error == pytest.approx(row["standard_error"], abs=1e-12), name
        assert rebuilt.std == pytest.approx(row["repeat_spread"], abs=1e-12), name
        assert rebuilt.repeat_means == pytest.approx(row["repeat_means"], abs=1e-12), name


def test_the_paired_differences_follow_from_the_outcomes(results):
    def outcome(name):
        return CrossValidation.from_outcomes(
            results["methods"][name]["correct"], results["fold_of"]
        )

    assert f"{TUNED} - {FROZEN}" in results["paired_differences"]
    for pair, row in results["paired_differences"].items():
        first, second = pair.split(" - ")
        assert {first, second} <= set(results["methods"])
        difference, error = outcome(first).paired_difference(outcome(second))
        assert (difference, error) == pytest.approx((row["difference"], row["standard_error"]))


def test_the_run_says_how_it_was_made(results, script):
    assert results["hyperparameters"] == script.HYPERPARAMETERS
    assert "never tuned on the held-out folds" in results["hyperparameters"]["chosen"]
    assert results["threads"] == 1 and results["max_tokens"] <= 64
    assert set(results["minutes"]) == {*script.HEADS, "frozen features and probes"}
    assert results["_about"]["command"] == script.COMMAND and results["_about"]["torch"]


def test_the_report_says_what_the_json_says(results, script):
    stored = {key: value for key, value in results.items() if key != "_about"}
    assert script.REPORT.read_text(encoding="utf-8") == script.report(stored)


def test_the_frozen_minilm_number_is_reproduced_live(results, labels, script, one_thread):
    from lessons.bert import BertModel
    from lessons.core.train import set_seed
    from lessons.wordpiece import WordPieceTokenizer

    texts = [" ".join(tokens) for tokens, _ in data.polarity()]
    features = script.frozen_features(
        BertModel.from_minilm(), WordPieceTokenizer.from_minilm(), texts
    )
    set_seed(0)
    live = cross_validate(features[FROZEN], labels, folds=10, repeats=3, seed=0)
    stored = results["methods"][FROZEN]
    assert live.mean == pytest.approx(stored["mean"], abs=1e-12)
    assert live.correct == stored["correct"]


def test_fine_tuning_trains_every_weight_and_is_seeded(script, one_thread):
    from lessons.bert import BertConfig, BertModel
    from lessons.wordpiece import WordPieceTokenizer

    config = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    tiny = BertModel(config).eval()
    tokenizer = WordPieceTokenizer.from_minilm()
    texts = ["a fine film", "a dull film", "great acting", "bad plot", "held out"]
    labels = torch.tensor([1, 0, 1, 0, 1])
    train = torch.tensor([True, True, True, True, False])
    before = {name: p.clone() for name, p in tiny.state_dict().items()}
    for make in script.HEADS.values():
        first = script.fine_tune(make, tiny, tokenizer, texts, labels, train, seed=3)
        again = script.fine_tune(make, tiny, tokenizer, texts, labels, train, seed=3)
        assert not first.training
        for name, value in first.bert.state_dict().items():
            assert torch.equal(value, again.bert.state_dict()[name]), name  # seeded
            if not (name.startswith("pooler") and make is script.mean_head):
                assert not torch.equal(value, before[name]), name  # trained end to end
        # the model that was copied stays as it was
        for name, value in tiny.state_dict().items():
            assert torch.equal(value, before[name]), name
