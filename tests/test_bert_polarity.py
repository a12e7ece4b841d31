"""scripts/finetune_polarity.py and its results: chapter 2's folds, outcomes that agree
with the fold accuracies, the frozen MiniLM number reproduced live, the report saying
the same numbers as the JSON, fine-tuning that trains every weight, seeded, and the
post-hoc 10-epoch row labelled as such, with only its epochs changed."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from lessons.core import data
from lessons.core.probe import CrossValidation, cross_validate, stratified_folds
from lessons.core.results import load_results

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "finetune_polarity.py"
FROZEN = "MiniLM frozen, mean-pooled (sentence embedding)"
TUNED = "MiniLM fine-tuned, [CLS] pooled (BERT's head)"
MEAN_TUNED = "MiniLM fine-tuned, mean-pooled"


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


def test_every_method_has_its_folds_whose_outcomes_agree_with_its_accuracies(results, script):
    methods = results["methods"]
    assert {FROZEN, TUNED, MEAN_TUNED, script.LONGER, "word2vec (mean)"} <= set(methods)
    assert {row["kind"] for row in methods.values()} == {"frozen", "fine-tuned"}
    for name, row in methods.items():
        # every row ran on all 3 repeats, but the post-hoc one may have run on fewer
        repeats = row["repeats"] if name == script.LONGER else 3
        assert 1 <= repeats <= 3, name
        assert len(row["accuracies"]) == 10 * repeats, name
        assert len(row["correct"]) == repeats, name
        assert all(len(r) == 200 for r in row["correct"]), name
        rebuilt = CrossValidation.from_outcomes(row["correct"], results["fold_of"][:repeats])
        assert rebuilt.accuracies == row["accuracies"], name
        assert rebuilt.mean == pytest.approx(row["mean"], abs=1e-12), name
        assert rebuilt.standard_error == pytest.approx(row["standard_error"], abs=1e-12), name
        assert rebuilt.std == pytest.approx(row["repeat_spread"], abs=1e-12), name
        assert rebuilt.repeat_means == pytest.approx(row["repeat_means"], abs=1e-12), name


def test_the_paired_differences_follow_from_the_outcomes(results, script):
    def outcome(name, repeats):
        return CrossValidation.from_outcomes(
            results["methods"][name]["correct"][:repeats], results["fold_of"][:repeats]
        )

    assert f"{TUNED} - {FROZEN}" in results["paired_differences"]
    assert f"{script.LONGER} - {FROZEN}" in results["paired_differences"]
    assert f"{script.LONGER} - {MEAN_TUNED}" in results["paired_differences"]
    for pair, row in results["paired_differences"].items():
        first, second = pair.split(" - ")
        assert {first, second} <= set(results["methods"])
        # on the repeats both ran: all 3, or those of the post-hoc row
        repeats = min(len(results["methods"][name]["correct"]) for name in (first, second))
        difference, error = outcome(first, repeats).paired_difference(outcome(second, repeats))
        assert (difference, error) == pytest.approx((row["difference"], row["standard_error"]))


def test_the_run_says_how_it_was_made(results, script):
    assert results["hyperparameters"] == script.HYPERPARAMETERS
    assert "never tuned on the held-out folds" in results["hyperparameters"]["chosen"]
    assert results["threads"] == 1 and results["max_tokens"] <= 64
    assert set(results["minutes"]) == {*script.HEADS, script.LONGER, "frozen features and probes"}
    assert results["_about"]["command"] == script.COMMAND and results["_about"]["torch"]


def test_the_post_hoc_row_says_so_and_changes_only_the_epochs(results, script):
    row = results["methods"][script.LONGER]
    assert row["kind"] == "fine-tuned" and "post hoc" in script.LONGER
    assert row["post_hoc"] == script.LONGER_WHY and "after the 3-epoch results" in row["post_hoc"]
    assert row["hyperparameters"] == script.LONGER_HYPERPARAMETERS
    changed = {
        key
        for key, value in script.LONGER_HYPERPARAMETERS.items()
        if value != script.HYPERPARAMETERS[key]
    }
    assert changed == {"epochs", "chosen"}
    assert (script.HYPERPARAMETERS["epochs"], script.LONGER_HYPERPARAMETERS["epochs"]) == (3, 10)
    assert "post hoc" in row["hyperparameters"]["chosen"]


def test_the_step_counts_in_the_post_hoc_note_are_right(script):
    batches = math.ceil(180 / script.HYPERPARAMETERS["batch_size"])  # 180 training sentences
    for epochs in (script.HYPERPARAMETERS["epochs"], script.LONGER_HYPERPARAMETERS["epochs"]):
        assert f"{epochs} epochs" in script.LONGER_WHY
        assert f"{epochs * batches} " in script.LONGER_WHY


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
    # the post-hoc row's hyperparameters reach the training: more epochs, other weights
    three = script.fine_tune(script.mean_head, tiny, tokenizer, texts, labels, train, seed=3)
    ten = script.fine_tune(
        script.mean_head,
        tiny,
        tokenizer,
        texts,
        labels,
        train,
        seed=3,
        hyperparameters=script.LONGER_HYPERPARAMETERS,
    )
    assert not torch.equal(three.classifier.weight, ten.classifier.weight)
