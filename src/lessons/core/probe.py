"""Linear probes: how much of a task a frozen representation makes linearly readable.

Used in: notebooks/02_elmo.ipynb, section 5 (word2vec against ELMo's layers on the
sentence-polarity task; what each layer holds: word senses against parts of speech), and
notebooks/05_bert.ipynb (MiniLM frozen and fine-tuned on the same polarity folds, from
``scripts/finetune_polarity.py``).

A probe is a logistic-regression classifier trained on fixed features. Its held-out
accuracy, estimated by k-fold cross-validation, measures the features, not the probe.
With a few hundred examples that estimate is noisy, so `cross_validate` repeats the
k-fold split with different shuffles and reports the spread; two feature sets probed on
the same examples with the same seed are compared example by example with
`CrossValidation.paired_difference`. The split itself is `stratified_folds`, so a model
that is not a probe (a network fine-tuned per fold, say) can be trained and tested on the
very same folds, and its held-out outcomes turned into a `CrossValidation` with
`CrossValidation.from_outcomes`.

Two kinds of features:

* ``(examples, dim)``: one vector per example; the probe is ``softmax(W f + b)``.
* ``(examples, layers, dim)``: one vector per example *and layer*; the probe first mixes
  the layers with a learned module made by ``make_mix(num_layers)`` (chapter 2 passes
  `lessons.elmo.ScalarMix`, ``gamma * sum_j s_j f_j``), then classifies the mix: ELMo's
  recipe, trained jointly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from lessons.core import checks

__all__ = [
    "CrossValidation",
    "LinearProbe",
    "cross_validate",
    "fit_probe",
    "stratified_folds",
]


#: Makes the module that mixes ``num_layers`` layers, e.g. ``lessons.elmo.ScalarMix``: it
#: maps ``(layers, batch, dim)`` to ``(batch, dim)``.
MixFactory = Callable[[int], nn.Module]


class LinearProbe(nn.Module):
    """Logistic regression on fixed features, with a learned mix for layered ones.

    ``LinearProbe(dim, num_classes, mix=None)``; ``forward(features)`` takes
    ``(batch, dim)``, or ``(batch, layers, dim)`` when a ``mix`` module is given (it maps
    ``(layers, batch, dim)`` to ``(batch, dim)``), and returns logits ``(batch, num_classes)``.
    """

    def __init__(self, dim: int, num_classes: int, mix: nn.Module | None = None):
        super().__init__()
        self.mix = mix
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.mix is not None:
            features = self.mix(features.transpose(0, 1))  # (layers, batch, dim) -> mixed
        return self.classifier(features)


def _check_features(
    features: object, labels: object, make_mix: MixFactory | None
) -> tuple[torch.Tensor, torch.Tensor]:
    features = checks.tensor(
        "features", features, dims=(2, 3), dtype="float", layout="(examples[, layers], dim)"
    )
    if features.dim() == 3 and make_mix is None:
        raise ValueError(
            f"features: got layered features {tuple(features.shape)} (examples, layers, dim) "
            "but no make_mix= to combine the layers (e.g. make_mix=lessons.elmo.ScalarMix)"
        )
    labels = torch.as_tensor(labels)
    if labels.shape != (features.shape[0],) or labels.is_floating_point():
        raise ValueError(
            f"labels: expected {features.shape[0]} integer class ids (one per example), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    if len(labels.unique()) < 2:
        raise ValueError("labels: expected at least two classes")
    return features, labels.long()


def fit_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight_decay: float = 1e-2,
    steps: int = 50,
    make_mix: MixFactory | None = None,
) -> LinearProbe:
    """Train a `LinearProbe` on all of ``features`` with L-BFGS (full batch).

    ``weight_decay`` is the L2 penalty on the classifier's weights (not on the mix).
    Layered features ``(examples, layers, dim)`` are mixed by ``make_mix(layers)``.
    """
    features, labels = _check_features(features, labels, make_mix)
    mix = make_mix(features.shape[1]) if features.dim() == 3 else None
    probe = LinearProbe(features.shape[-1], int(labels.max()) + 1, mix).to(features.dtype)
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(probe(features), labels)
        loss = loss + weight_decay * probe.classifier.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


@dataclass
class CrossValidation:
    """Held-out accuracies of `cross_validate`: one per fold of every repeat.

    ``correct[r][i]`` says whether example ``i`` was classified right when its fold was
    held out in repeat ``r``; ``probes`` are the fitted probes, one per fold of every
    repeat (their ``mix``, if any, holds the learned layer weights). Both are empty when
    the accuracies were given by hand.
    """

    accuracies: list[float]
    folds: int
    repeats: int
    examples: int
    correct: list[list[bool]] = field(default_factory=list, repr=False)
    probes: list[LinearProbe] = field(default_factory=list, repr=False)

    @classmethod
    def from_outcomes(
        cls,
        correct: Sequence[Sequence[bool]] | torch.Tensor,
        fold_of: Sequence[Sequence[int]] | torch.Tensor,
    ) -> CrossValidation:
        """The cross-validation whose held-out outcomes are ``correct`` ``(repeats,
        examples)`` on the folds ``fold_of`` ``(repeats, examples)`` of `stratified_folds`:
        the accuracy of every fold of every repeat, in `cross_validate`'s order, computed
        as it does. For a model trained per fold outside `cross_validate`, or outcomes
        read back from a saved result, so that `paired_difference` works on them.
        """
        fold_of = checks.tensor(
            "fold_of", torch.as_tensor(fold_of), dims=2, dtype="int", layout="(repeats, examples)"
        )
        right = torch.as_tensor(correct)
        if right.shape != fold_of.shape or right.dtype != torch.bool:
            raise ValueError(
                f"correct: expected booleans of shape {tuple(fold_of.shape)} (repeats, "
                f"examples) like fold_of, got {right.dtype} of shape {tuple(right.shape)}"
            )
        folds = int(fold_of.max()) + 1
        accuracies = []
        for repeat in range(fold_of.shape[0]):
            for fold in range(folds):
                test = fold_of[repeat] == fold
                if not test.any():
                    raise ValueError(f"fold_of: repeat {repeat} holds no example in fold {fold}")
                accuracies.append(float(right[repeat][test].float().mean()))
        return cls(accuracies, folds, fold_of.shape[0], fold_of.shape[1], right.tolist())

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)

    @property
    def std(self) -> float:
        """Standard deviation of the repeat means (the spread from the choice of split)."""
        means = self.repeat_means
        if len(means) < 2:
            return 0.0
        centre = sum(means) / len(means)
        return math.sqrt(sum((m - centre) ** 2 for m in means) / (len(means) - 1))

    @property
    def repeat_means(self) -> list[float]:
        return [
            sum(self.accuracies[r * self.folds : (r + 1) * self.folds]) / self.folds
            for r in range(self.repeats)
        ]

    @property
    def standard_error(self) -> float:
        """Binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy ``p`` measured on
        ``n = examples`` test examples: the uncertainty that comes from having so few."""
        return math.sqrt(self.mean * (1 - self.mean) / self.examples)

    def paired_difference(self, other: CrossValidation) -> tuple[float, float]:
        """``(difference, standard_error)``: how much more accurate ``self`` is than
        ``other`` on the same examples, and the standard error of that difference.

        For each example, ``d_i`` is its share of repeats classified right by ``self``
        minus the same share for ``other``; the difference is the mean of ``d_i`` and its
        standard error ``std(d) / sqrt(n)``. Pairing removes the noise that both share
        (the hard examples are hard for both), so it is far smaller than the two binomial
        standard errors combined. Both must come from `cross_validate` on the same
        labels with the same ``folds``, ``repeats`` and ``seed``.
        """
        if not isinstance(other, CrossValidation):
            raise TypeError(f"other: expected a CrossValidation, got {type(other).__name__}")
        shape = (self.repeats, self.folds, self.examples)
        if not self.correct or (other.repeats, other.folds, other.examples) != shape:
            raise ValueError(
                f"other: expected a cross-validation of the same {self.examples} examples "
                f"({self.repeats} x {self.folds}-fold, from cross_validate), got "
                f"{other.examples} examples ({other.repeats} x {other.folds}-fold)"
            )
        mine = torch.tensor(self.correct, dtype=torch.float64).mean(dim=0)
        theirs = torch.tensor(other.correct, dtype=torch.float64).mean(dim=0)
        d = mine - theirs
        return float(d.mean()), float(d.std() / math.sqrt(len(d)))

    def __str__(self) -> str:
        return (
            f"{self.mean:.3f} ± {self.standard_error:.3f} (binomial s.e.; "
            f"repeats spread {self.std:.3f}; {self.repeats} x {self.folds}-fold)"
        )


def stratified_folds(
    labels: torch.Tensor | Sequence[int], folds: int = 10, repeats: int = 5, seed: int = 0
) -> torch.Tensor:
    """The fold of every example in every repeat: a LongTensor ``(repeats, examples)`` of
    fold ids in ``[0, folds)``, the split `cross_validate` uses.

    Repeat ``r`` shuffles the examples of each class (in the order of ``labels.unique()``)
    with a generator seeded ``seed + r`` and deals them round-robin into the folds, so
    every fold has the same class balance, give or take one example per class.

    Used in: notebooks/05_bert.ipynb, through ``scripts/finetune_polarity.py``, which
    fine-tunes MiniLM on chapter 2's folds, ``stratified_folds(labels, 10, 3, 0)``.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or len(labels) == 0:
        raise ValueError(
            f"labels: expected integer class ids of shape (examples,), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    checks.positive_int("folds", folds, minimum=2)
    if folds > len(labels):
        raise ValueError(f"folds: expected an int in [2, {len(labels)}], got {folds!r}")
    checks.positive_int("repeats", repeats)
    fold_of = torch.empty(repeats, len(labels), dtype=torch.long)
    for repeat in range(repeats):
        generator = torch.Generator().manual_seed(seed + repeat)
        for label in labels.unique():
            members = (labels == label).nonzero().flatten()
            members = members[torch.randperm(len(members), generator=generator)]
            fold_of[repeat, members] = torch.arange(len(members)) % folds
    return fold_of


def cross_validate(
    features: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    folds: int = 10,
    repeats: int = 5,
    seed: int = 0,
    weight_decay: float = 1e-2,
    make_mix: MixFactory | None = None,
) -> CrossValidation:
    """Repeated stratified k-fold cross-validation of a `LinearProbe`.

    Each repeat shuffles the examples of each class with its own seed and deals them
    round-robin into ``folds`` folds (`stratified_folds`, so every fold has the same
    class balance); each fold is held out once while a probe is fitted (`fit_probe`) on
    the rest. Features are standardised with the training folds' mean and standard
    deviation only. Layered features ``(examples, layers, dim)`` are mixed by
    ``make_mix(layers)`` (see `fit_probe`).
    The result keeps every example's held-out outcome and every fitted probe.
    """
    features, labels = _check_features(features, labels, make_mix)
    accuracies, correct, probes = [], [], []
    for fold_of in stratified_folds(labels, folds, repeats, seed):
        right = torch.zeros(len(labels), dtype=torch.bool)
        for fold in range(folds):
            test, train = fold_of == fold, fold_of != fold
            mean = features[train].mean(dim=0)
            std = features[train].std(dim=0).clamp(min=1e-8)
            probe = fit_probe(
                (features[train] - mean) / std, labels[train], weight_decay, make_mix=make_mix
            )
            with torch.no_grad():
                predicted = probe((features[test] - mean) / std).argmax(dim=-1)
            right[test] = predicted == labels[test]
            accuracies.append(float(right[test].float().mean()))
            probes.append(probe)
        correct.append(right.tolist())
    return CrossValidation(accuracies, folds, repeats, len(labels), correct, probes)
