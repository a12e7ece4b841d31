"""Linear probes: cross-validated logistic regression on frozen features."""

import pytest
import torch

from lessons.core.probe import CrossValidation, cross_validate, fit_probe, stratified_folds
from lessons.elmo import ScalarMix


def blobs(n: int = 80, dim: int = 5, shift: float = 3.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    features = torch.randn(n, dim, generator=g, dtype=torch.float64)
    features[:, 0] += shift * (2 * labels - 1)
    return features, labels


def test_separable_classes_are_found_and_random_labels_are_not():
    features, labels = blobs()
    result = cross_validate(features, labels, folds=5, repeats=2)
    assert isinstance(result, CrossValidation)
    assert len(result.accuracies) == 10 and result.examples == 80
    assert result.mean > 0.95
    shuffled = labels[torch.randperm(80, generator=torch.Generator().manual_seed(1))]
    noise = torch.randn(80, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    chance = cross_validate(noise, shuffled, folds=5, repeats=4)
    assert 0.3 < chance.mean < 0.7
    assert "± " in str(chance) and "4 x 5-fold" in str(chance)


def test_cross_validation_summaries_by_hand():
    result = CrossValidation([0.6, 0.7, 0.8, 0.9], folds=2, repeats=2, examples=100)
    assert result.mean == pytest.approx(0.75)
    assert result.repeat_means == pytest.approx([0.65, 0.85])
    # repeat means 0.65 and 0.85 around 0.75: sqrt((0.1² + 0.1²) / (2 - 1)) = 0.1414
    assert result.std == pytest.approx(0.141421, abs=1e-6)
    # binomial: sqrt(0.75 * 0.25 / 100 examples) = sqrt(0.001875) = 0.0433
    assert result.standard_error == pytest.approx(0.0433013, abs=1e-7)
    assert str(result) == "0.750 ± 0.043 (binomial s.e.; repeats spread 0.141; 2 x 2-fold)"
    assert CrossValidation([0.5, 0.7], folds=2, repeats=1, examples=10).std == 0.0


def test_cross_validation_is_deterministic_for_a_seed():
    features, labels = blobs(shift=0.7)
    first = cross_validate(features, labels, folds=4, repeats=2, seed=3)
    again = cross_validate(features, labels, folds=4, repeats=2, seed=3)
    assert first.accuracies == again.accuracies
    assert first.repeat_means != cross_validate(features, labels, 4, 2, seed=4).repeat_means


def test_the_scalar_mix_probe_learns_which_layer_carries_the_label():
    features, labels = blobs(n=120, dim=4, shift=2.0)
    noise = torch.randn(120, 2, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    layered = torch.stack([noise[:, 0], features, noise[:, 1]], dim=1)  # (120, 3, 4)
    probe = fit_probe(layered, labels, make_mix=ScalarMix)
    weights = torch.softmax(probe.mix.weights.detach(), dim=0)
    assert int(weights.argmax()) == 1 and float(weights[1]) > 0.5
    assert cross_validate(layered, labels, folds=5, repeats=1, make_mix=ScalarMix).mean > 0.85
    with pytest.raises(ValueError, match=r"features: got layered features \(120, 3, 4\)"):
        cross_validate(layered, labels)  # layers, but nothing said how to mix them


def test_bad_features_and_labels_are_named():
    features, labels = blobs(n=10)
    with pytest.raises(ValueError, match="features: expected a floating-point tensor with 2 or 3"):
        cross_validate(features[0], labels)
    with pytest.raises(TypeError, match="features: expected a floating-point tensor"):
        cross_validate(features.long(), labels)
    with pytest.raises(ValueError, match=r"labels: expected 10 integer class ids.*\(9,\)"):
        cross_validate(features, labels[:9])
    with pytest.raises(ValueError, match="labels: expected at least two classes"):
        cross_validate(features, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"folds: expected an int in \[2, 10\], got 11"):
        cross_validate(features, labels, folds=11)


def test_every_example_is_held_out_once_per_repeat_and_its_outcome_kept():
    features, labels = blobs(n=40, shift=1.0)
    result = cross_validate(features, labels, folds=4, repeats=2)
    assert len(result.correct) == 2 and all(len(row) == 40 for row in result.correct)
    assert len(result.probes) == 8 and all(p.mix is None for p in result.probes)
    # each fold holds 10 examples, so the mean of the fold accuracies is the share correct
    for repeat, row in enumerate(result.correct):
        assert sum(row) / 40 == pytest.approx(result.repeat_means[repeat])


def test_paired_difference_by_hand():
    a = CrossValidation([1.0, 0.5], 2, 1, 4, correct=[[True, True, True, False]])
    b = CrossValidation([0.5, 0.5], 2, 1, 4, correct=[[True, False, True, False]])
    # d = (0, 1, 0, 0): mean 0.25; std with n - 1 = sqrt(0.75 / 3) = 0.5; s.e. 0.5 / 2
    assert a.paired_difference(b) == pytest.approx((0.25, 0.25))
    assert b.paired_difference(a) == pytest.approx((-0.25, 0.25))
    # two repeats: each example's share of repeats correct is compared
    c = CrossValidation([1, 1, 1, 1], 2, 2, 2, correct=[[True, True], [True, False]])
    d = CrossValidation([1, 1, 1, 1], 2, 2, 2, correct=[[False, True], [False, False]])
    # shares: c = (1, 0.5), d = (0, 0.5): d_i = (1, 0), mean 0.5, std 0.7071, s.e. 0.5
    assert c.paired_difference(d) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="other: expected a cross-validation of the same 4"):
        a.paired_difference(c)
    with pytest.raises(TypeError, match="other: expected a CrossValidation, got float"):
        a.paired_difference(0.5)


def test_a_better_feature_set_wins_the_paired_comparison():
    features, labels = blobs(n=100, dim=3, shift=2.0)
    weak = features.clone()
    weak[:, 0] = torch.randn(100, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    strong_result = cross_validate(features, labels, folds=5, repeats=2)
    weak_result = cross_validate(weak, labels, folds=5, repeats=2)
    difference, error = strong_result.paired_difference(weak_result)
    assert difference == pytest.approx(strong_result.mean - weak_result.mean)
    assert difference > 3 * error > 0


def old_fold_assignment(labels: torch.Tensor, folds: int, repeats: int, seed: int) -> list:
    """A frozen copy of the split `cross_validate` made before `stratified_folds` existed
    (chapter 2's numbers were measured with it)."""
    assignments = []
    for repeat in range(repeats):
        generator = torch.Generator().manual_seed(seed + repeat)
        fold_of = torch.empty(len(labels), dtype=torch.long)
        for label in labels.unique():
            members = (labels == label).nonzero().flatten()
            members = members[torch.randperm(len(members), generator=generator)]
            fold_of[members] = torch.arange(len(members)) % folds
        assignments.append(fold_of)
    return assignments


@pytest.mark.parametrize(
    ("labels", "folds", "repeats", "seed"),
    [
        (torch.tensor([0] * 100 + [1] * 100), 10, 3, 0),  # chapter 2's polarity split
        (torch.arange(200) % 2, 10, 3, 0),
        (torch.randint(0, 3, (57,), generator=torch.Generator().manual_seed(4)), 5, 4, 11),
        (torch.tensor([3, 3, 7, 3, 7, 7, 7, 3, 3], dtype=torch.int32), 2, 2, 1),
    ],
)
def test_stratified_folds_are_the_split_cross_validate_always_made(labels, folds, repeats, seed):
    fold_of = stratified_folds(labels, folds, repeats, seed)
    assert fold_of.dtype == torch.long and fold_of.shape == (repeats, len(labels))
    for new, old in zip(fold_of, old_fold_assignment(labels, folds, repeats, seed), strict=True):
        assert torch.equal(new, old)


def test_stratified_folds_by_value():
    labels = torch.tensor([0, 1, 1, 0, 2, 1, 0, 0, 1, 2])
    # repeat 0 (generator seed 5): class 0 = examples 0, 3, 6, 7 dealt to folds 2, 1, 0, 0
    assert stratified_folds(labels, 3, 2, 5).tolist() == [
        [2, 0, 0, 1, 0, 2, 0, 0, 1, 1],
        [0, 0, 0, 1, 1, 1, 0, 2, 2, 0],
    ]


def test_stratified_folds_hold_every_example_out_once_with_the_class_balance():
    labels = torch.tensor([0] * 23 + [1] * 41 + [2] * 6)
    fold_of = stratified_folds(labels, folds=5, repeats=3, seed=2)
    assert fold_of.min() == 0 and fold_of.max() == 4  # one fold id per example and repeat
    for repeat in fold_of:
        for label in range(3):
            counts = torch.bincount(repeat[labels == label], minlength=5)
            assert counts.sum() == (labels == label).sum()
            assert counts.max() - counts.min() <= 1  # each class spread evenly over folds
        sizes = torch.bincount(repeat, minlength=5)
        assert sizes.sum() == 70 and sizes.max() - sizes.min() <= 3
    assert not torch.equal(fold_of[0], fold_of[1])  # each repeat shuffles anew
    assert torch.equal(fold_of, stratified_folds(labels, folds=5, repeats=3, seed=2))


def test_cross_validate_gives_the_accuracies_it_gave_before_the_split_was_extracted():
    features, labels = blobs(shift=0.7)
    torch.manual_seed(0)  # the probes start from the global generator's weights
    result = cross_validate(features, labels, folds=4, repeats=2, seed=3)
    # measured with cross_validate as it was before stratified_folds (commit a2e6601)
    assert result.accuracies == [
        0.75, 0.800000011920929, 0.75, 0.75, 0.75, 0.75, 0.6499999761581421, 0.949999988079071
    ]  # fmt: skip
    assert sum(map(sum, result.correct)) == 123


def test_stratified_folds_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"labels: expected integer class ids.*\(2, 2\)"):
        stratified_folds(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels: expected integer class ids.*float32"):
        stratified_folds(torch.zeros(4))
    with pytest.raises(ValueError, match=r"folds: expected an int in \[2, 4\], got 5"):
        stratified_folds([0, 1, 0, 1], folds=5)
    with pytest.raises(ValueError, match="repeats"):
        stratified_folds([0, 1, 0, 1], folds=2, repeats=0)


def test_a_cross_validation_rebuilt_from_its_outcomes_is_the_same():
    features, labels = blobs(n=60, shift=1.0)
    result = cross_validate(features, labels, folds=5, repeats=3, seed=1)
    rebuilt = CrossValidation.from_outcomes(result.correct, stratified_folds(labels, 5, 3, 1))
    assert rebuilt.accuracies == result.accuracies  # the same floats, fold by fold
    assert (rebuilt.folds, rebuilt.repeats, rebuilt.examples) == (5, 3, 60)
    assert rebuilt.correct == result.correct and str(rebuilt) == str(result)
    # as read back from JSON: nested lists
    listed = CrossValidation.from_outcomes(
        result.correct, stratified_folds(labels, 5, 3, 1).tolist()
    )
    assert listed.paired_difference(result) == (0.0, 0.0)


def test_outcomes_by_hand_and_bad_outcomes_are_named():
    fold_of = [[0, 1, 0, 1], [1, 1, 0, 0]]
    correct = [[True, True, False, True], [False, True, True, True]]
    result = CrossValidation.from_outcomes(correct, fold_of)
    # repeat 0: fold 0 = examples 0, 2 (1 of 2 right), fold 1 = 1, 3 (2 of 2); repeat 1:
    # fold 0 = examples 2, 3 (2 of 2), fold 1 = 0, 1 (1 of 2)
    assert result.accuracies == [0.5, 1.0, 1.0, 0.5]
    assert (result.folds, result.repeats, result.examples) == (2, 2, 4)
    with pytest.raises(ValueError, match=r"correct: expected booleans of shape \(2, 4\)"):
        CrossValidation.from_outcomes([[1, 1, 0, 1], [0, 1, 1, 1]], fold_of)
    with pytest.raises(ValueError, match=r"correct: expected booleans of shape \(2, 4\)"):
        CrossValidation.from_outcomes(correct[:1], fold_of)
    with pytest.raises(ValueError, match="fold_of: repeat 0 holds no example in fold 1"):
        CrossValidation.from_outcomes(correct, [[0, 2, 0, 2], [1, 1, 0, 2]])
    with pytest.raises(TypeError, match="fold_of: expected an integer tensor"):
        CrossValidation.from_outcomes(correct, [[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
