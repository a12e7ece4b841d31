"""Exercises and quiz of chapter 1, word2vec.

Each solution is the taught function of `lessons.word2vec` itself.
"""

from __future__ import annotations

import math

import torch

from lessons.exercises import quiz
from lessons.exercises.framework import Attempt, Case, Exercise, Hint, register
from lessons.word2vec import (
    analogy,
    cosine_neighbours,
    keep_probability,
    log_sigmoid,
    negative_sampling_loss,
    noise_distribution,
)

# --------------------------------------------------------------------------------------
# Exercise: word2vec.log_sigmoid
# --------------------------------------------------------------------------------------


def _has_inf_or_nan(attempt: Attempt) -> bool:
    return bool((~torch.isfinite(attempt.got)).any())


def _log_sigmoid_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("random values, shape (3, 4)", (torch.randn(3, 4, generator=g),)),
        Case("zero and small values", (torch.tensor([0.0, 1e-3, -1e-3]),)),
        Case("large negative values (-1000)", (torch.tensor([-1000.0, -200.0, -50.0]),)),
        Case("large positive values (1000)", (torch.tensor([1000.0, 200.0, 50.0]),)),
        Case("float64", (torch.randn(5, generator=g, dtype=torch.float64) * 10,)),
    ]


def _log_of_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.sigmoid(x))


def _log_sigmoid_one_branch(x: torch.Tensor) -> torch.Tensor:
    return -torch.log1p(torch.exp(-x))


def _log_sigmoid_sign_error(x: torch.Tensor) -> torch.Tensor:
    return torch.minimum(x, torch.zeros_like(x)) + torch.log1p(torch.exp(-x.abs()))


register(
    Exercise(
        id="word2vec.log_sigmoid",
        chapter="word2vec",
        prompt=(
            "Write `log_sigmoid(x)`: log σ(x) = -log(1 + exp(-x)), elementwise. It must stay "
            "finite and exact for large values of either sign (-1000 and 1000), where "
            "`exp` overflows or `sigmoid` rounds to 0, and keep the shape and dtype of `x`. "
            "Use torch operations, not `torch.nn.functional.logsigmoid`."
        ),
        signature="def log_sigmoid(x: torch.Tensor) -> torch.Tensor",
        solution=log_sigmoid,
        cases=_log_sigmoid_cases,
        hints=(
            Hint(
                "For very negative x, σ(x) rounds to 0 and log(0) = -inf, and exp(-x) "
                "overflows. Write it so that `exp` only ever sees a number <= 0: for x < 0, "
                "log σ(x) = x - log(1 + exp(x)). `torch.minimum(x, 0)` and `x.abs()` combine "
                "both cases in one formula.",
                fits=_has_inf_or_nan,
            ),
            Hint(
                "Check the sign: log σ(x) is never positive, since σ(x) < 1. It is "
                "min(x, 0) - log(1 + exp(-|x|)).",
                fits=lambda a: a.problem == "values",
            ),
        ),
        wrong_answers=(_log_of_sigmoid, _log_sigmoid_one_branch, _log_sigmoid_sign_error),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: word2vec.negative_sampling_loss
# --------------------------------------------------------------------------------------


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def batch(size: int, negative: int, d: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
        return (
            scale * torch.randn(size, d, generator=g),
            scale * torch.randn(size, d, generator=g),
            scale * torch.randn(size, negative, d, generator=g),
        )

    return [
        Case("batch 4, 3 negatives, d = 5", batch(4, 3, 5)),
        Case("batch of one, 5 negatives", batch(1, 5, 8)),
        Case("one negative per pair", batch(6, 1, 4)),
        Case("large scores (vectors of length ~100)", batch(3, 2, 6, scale=30.0)),
    ]


def _loss_negatives_same_sign(
    inputs: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    positive_scores = (inputs * positives).sum(-1)
    negative_scores = (negatives * inputs[:, None, :]).sum(-1)
    return -log_sigmoid(positive_scores) - log_sigmoid(negative_scores).sum(-1)


def _loss_mean_over_negatives(
    inputs: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    positive_scores = (inputs * positives).sum(-1)
    negative_scores = (negatives * inputs[:, None, :]).sum(-1)
    return -log_sigmoid(positive_scores) - log_sigmoid(-negative_scores).mean(-1)


def _loss_naive_log(
    inputs: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    positive_scores = (inputs * positives).sum(-1)
    negative_scores = (negatives * inputs[:, None, :]).sum(-1)
    return -torch.log(torch.sigmoid(positive_scores)) - torch.log(
        torch.sigmoid(-negative_scores)
    ).sum(-1)


register(
    Exercise(
        id="word2vec.negative_sampling_loss",
        chapter="word2vec",
        prompt=(
            "Write `negative_sampling_loss(inputs, positives, negatives)`: the loss of each "
            "pair of a batch, `-log σ(u_o·v) - Σ_k log σ(-u_k·v)`, where `inputs` "
            "(batch, d) holds the input vectors v, `positives` (batch, d) the output "
            "vectors u_o of the true words and `negatives` (batch, negative, d) the output "
            "vectors u_k of the noise words. Return shape (batch,). It must stay finite for "
            "large scores: use a stable log-sigmoid (`torch.nn.functional.logsigmoid` is "
            "fine here)."
        ),
        signature=(
            "def negative_sampling_loss(inputs: torch.Tensor, positives: torch.Tensor, "
            "negatives: torch.Tensor) -> torch.Tensor"
        ),
        solution=negative_sampling_loss,
        cases=_loss_cases,
        hints=(
            Hint(
                "The scores are dot products along the last dimension: `(inputs * "
                "positives).sum(-1)` has shape (batch,), and `(negatives * inputs[:, None, "
                ":]).sum(-1)` has shape (batch, negative). Sum the noise terms over the "
                "negatives, one loss per pair.",
                fits=lambda a: a.problem in ("exception", "shape"),
            ),
            Hint(
                "log(sigmoid(s)) is -inf once sigmoid(s) rounds to 0 (s around -100 in "
                "float32). Use a stable log-sigmoid.",
                fits=_has_inf_or_nan,
            ),
            Hint(
                "A noise word should get a low score, so its term is log σ(-u_k·v), with a "
                "minus inside; and the noise terms are summed over k, not averaged.",
                fits=lambda a: a.problem == "values",
            ),
        ),
        wrong_answers=(_loss_negatives_same_sign, _loss_mean_over_negatives, _loss_naive_log),
        check_grad=True,
    )
)


# --------------------------------------------------------------------------------------
# Exercise: word2vec.noise_distribution
# --------------------------------------------------------------------------------------


def _noise_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case("Zipf-like counts", (torch.tensor([1000, 300, 120, 40, 7, 5, 5, 1]),)),
        Case("random counts", (torch.randint(1, 500, (20,), generator=g),)),
        Case("one word", (torch.tensor([12]),)),
        Case(
            "exponent 1 (the unigram distribution)", (torch.tensor([9, 3, 1]),), {"exponent": 1.0}
        ),
        Case("exponent 0 (uniform)", (torch.tensor([9, 3, 1, 1]),), {"exponent": 0.0}),
    ]


def _noise_not_normalised(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    return counts.to(torch.float64) ** exponent


def _noise_normalised_first(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    counts = counts.to(torch.float64)
    return (counts / counts.sum()) ** exponent


def _noise_fixed_exponent(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    weights = counts.to(torch.float64) ** 0.75
    return weights / weights.sum()


register(
    Exercise(
        id="word2vec.noise_distribution",
        chapter="word2vec",
        prompt=(
            "Write `noise_distribution(counts, exponent=0.75)`: the distribution negative "
            "samples are drawn from, `counts ** exponent` normalised to sum to 1. `counts` "
            "is an integer tensor (vocab,); return float64 probabilities (vocab,)."
        ),
        signature=(
            "def noise_distribution(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor"
        ),
        solution=noise_distribution,
        cases=_noise_cases,
        hints=(
            Hint(
                "Convert to float64 first (`counts.to(torch.float64)`): integer tensors "
                "cannot hold fractional powers.",
                fits=lambda a: a.problem in ("dtype", "exception"),
            ),
            Hint(
                "Raise to the power first, then divide by the sum of the powers: the result "
                "must sum to 1. Use the `exponent` argument.",
                fits=lambda a: a.problem == "values",
            ),
        ),
        wrong_answers=(_noise_not_normalised, _noise_normalised_first, _noise_fixed_exponent),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: word2vec.keep_probability
# --------------------------------------------------------------------------------------


def _keep_cases() -> list[Case]:
    zipf = torch.tensor([50_000, 20_000, 5_000, 800, 100, 10, 1])
    return [
        Case("Zipf-like counts, sample=1e-3", (zipf, 1e-3)),
        Case("sample=1e-2", (zipf, 1e-2)),
        Case("sample=1e-5 (aggressive)", (zipf, 1e-5)),
        Case("all words equally frequent", (torch.tensor([10, 10, 10, 10]), 0.1)),
        Case("sample=0 keeps everything", (zipf, 0.0)),
    ]


def _keep_not_clipped(counts: torch.Tensor, sample: float) -> torch.Tensor:
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts)
    share = counts / counts.sum()
    return (torch.sqrt(share / sample) + 1) * sample / share


def _keep_paper_formula(counts: torch.Tensor, sample: float) -> torch.Tensor:
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts)
    share = counts / counts.sum()
    return torch.sqrt(sample / share).clamp(max=1.0)


def _keep_raw_counts(counts: torch.Tensor, sample: float) -> torch.Tensor:
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts)
    return ((torch.sqrt(counts / sample) + 1) * sample / counts).clamp(max=1.0)


register(
    Exercise(
        id="word2vec.keep_probability",
        chapter="word2vec",
        prompt=(
            "Write `keep_probability(counts, sample)`: the chance that subsampling keeps an "
            "occurrence of each word, as word2vec.c and gensim compute it: with f = count / "
            "total count the word's share of the corpus and s = `sample`, keep = "
            "`(sqrt(f / s) + 1) * s / f`, at most 1. `sample=0` turns subsampling off (keep "
            "everything). `counts` is an integer tensor (vocab,); return float64 (vocab,)."
        ),
        signature="def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor",
        solution=keep_probability,
        cases=_keep_cases,
        hints=(
            Hint(
                "A probability is at most 1: rare words come out above 1 from the formula, "
                "clip them with `.clamp(max=1.0)`.",
                fits=lambda a: bool((a.got > 1).any()),
            ),
            Hint(
                "f is a share of the corpus, `counts / counts.sum()`, not a raw count; and the "
                "formula is word2vec.c's `(sqrt(f / s) + 1) * s / f`, not the paper's "
                "`sqrt(s / f)`.",
                fits=lambda a: a.problem == "values",
            ),
            Hint(
                "With sample = 0 the formula divides 0 by 0: return ones instead.",
                fits=_has_inf_or_nan,
            ),
        ),
        wrong_answers=(_keep_not_clipped, _keep_paper_formula, _keep_raw_counts),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: word2vec.cosine_neighbours
# --------------------------------------------------------------------------------------


def _neighbour_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    lengths = torch.rand(30, 1, generator=g) * 10 + 0.1
    with_zero = torch.randn(12, 4, generator=g)
    with_zero[5] = 0
    return [
        Case("20 random vectors, top 3", (torch.randn(20, 6, generator=g), torch.randn(6), 3)),
        Case(
            "vectors of very different lengths, top 5",
            (torch.randn(30, 8, generator=g) * lengths, torch.randn(8, generator=g), 5),
        ),
        Case("top 1", (torch.randn(10, 3, generator=g), torch.randn(3, generator=g), 1)),
        Case("a zero vector among them", (with_zero, torch.randn(4, generator=g), 4)),
    ]


def _neighbours_by_dot(vectors: torch.Tensor, query: torch.Tensor, topn: int) -> torch.Tensor:
    return torch.topk(vectors @ query, topn).indices


def _neighbours_farthest(vectors: torch.Tensor, query: torch.Tensor, topn: int) -> torch.Tensor:
    cosines = vectors @ query / (vectors.norm(dim=1).clamp_min(1e-12) * query.norm())
    return torch.topk(cosines, topn, largest=False).indices


def _neighbours_no_clamp(vectors: torch.Tensor, query: torch.Tensor, topn: int) -> torch.Tensor:
    cosines = vectors @ query / (vectors.norm(dim=1) * query.norm())
    return torch.topk(cosines, topn).indices


register(
    Exercise(
        id="word2vec.cosine_neighbours",
        chapter="word2vec",
        prompt=(
            "Write `cosine_neighbours(vectors, query, topn)`: the indices (int64, shape "
            "(topn,)) of the `topn` rows of `vectors` (n, d) with the largest cosine "
            "similarity to `query` (d,), most similar first. A zero row has cosine 0 (clamp "
            "lengths to at least 1e-12)."
        ),
        signature=(
            "def cosine_neighbours(vectors: torch.Tensor, query: torch.Tensor, topn: int) "
            "-> torch.Tensor"
        ),
        solution=cosine_neighbours,
        cases=_neighbour_cases,
        hints=(
            Hint(
                "A zero row gives 0 / 0 = NaN, and `topk` ranks NaN above every number: "
                "clamp each length with `.clamp_min(1e-12)` before dividing.",
                fits=lambda a: a.case.name.startswith("a zero vector"),
            ),
            Hint(
                "Cosine, not dot product: divide each dot product by the length of the row "
                "and of the query, or long vectors win whatever their direction. Then "
                "`torch.topk(..., topn).indices` gives the largest first.",
                fits=lambda a: a.problem == "values",
            ),
            Hint(
                "Return a tensor of indices: `torch.topk(scores, topn).indices`.",
                fits=lambda a: a.problem in ("type", "dtype", "shape", "exception"),
            ),
        ),
        wrong_answers=(_neighbours_by_dot, _neighbours_farthest, _neighbours_no_clamp),
    )
)


# --------------------------------------------------------------------------------------
# Exercise: word2vec.analogy
# --------------------------------------------------------------------------------------


def _analogy_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    planted = torch.randn(12, 10, generator=g)
    planted[7] = planted[2] - planted[0] + planted[5]  # 0 : 2 :: 5 : 7
    lengths = torch.randn(15, 4, generator=g) * (torch.rand(15, 1, generator=g) * 20 + 0.1)
    near_b = torch.randn(9, 6, generator=g)
    near_b[4] = near_b[1] * 0.01 + torch.randn(6, generator=g) * 0.001  # a ≈ 0: answer ≈ b
    return [
        Case("planted: 0 is to 2 as 5 is to 7", (planted, 0, 2, 5)),
        Case("random vectors of very different lengths", (lengths, 3, 8, 11)),
        Case("the closest word is one of the inputs", (near_b, 4, 1, 6)),
        Case("random vectors", (torch.randn(25, 5, generator=g), 10, 2, 19)),
    ]


def _analogy_keeps_inputs(vectors: torch.Tensor, a: int, b: int, c: int) -> int:
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return int((unit @ (unit[b] - unit[a] + unit[c])).argmax())


def _analogy_raw_vectors(vectors: torch.Tensor, a: int, b: int, c: int) -> int:
    scores = vectors @ (vectors[b] - vectors[a] + vectors[c])
    scores[[a, b, c]] = -math.inf
    return int(scores.argmax())


def _analogy_swapped(vectors: torch.Tensor, a: int, b: int, c: int) -> int:
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosines = unit @ (unit[a] - unit[b] + unit[c])
    cosines[[a, b, c]] = -math.inf
    return int(cosines.argmax())


register(
    Exercise(
        id="word2vec.analogy",
        chapter="word2vec",
        prompt=(
            'Write `analogy(vectors, a, b, c)` (3CosAdd): "a is to b as c is to ?". '
            "Normalise every row of `vectors` (n, d) to length 1, form unit(b) - unit(a) + "
            "unit(c), and return (as a Python int) the index of the row with the largest "
            "dot product with it (the largest cosine), leaving out a, b and c themselves."
        ),
        signature="def analogy(vectors: torch.Tensor, a: int, b: int, c: int) -> int",
        solution=analogy,
        cases=_analogy_cases,
        hints=(
            Hint(
                "Leave out the three question words: the nearest vector is very often b or "
                "c itself. Set their scores to `-math.inf` before `argmax`.",
                fits=lambda a: a.got in a.case.args[1:],
            ),
            Hint(
                "Normalise the rows first (divide by `vectors.norm(dim=1, keepdim=True)`), "
                "and check the direction: b - a + c, so that king - man + woman ≈ queen.",
                fits=lambda a: a.problem == "values",
            ),
            Hint(
                "Return a Python int: `int(scores.argmax())`.", fits=lambda a: a.problem == "type"
            ),
        ),
        wrong_answers=(_analogy_keeps_inputs, _analogy_raw_vectors, _analogy_swapped),
    )
)


# --------------------------------------------------------------------------------------
# Quiz of the word2vec chapter
# --------------------------------------------------------------------------------------

quiz.register(
    "word2vec",
    [
        {
            "question": "Negative samples are drawn from the unigram distribution raised to "
            "the power 0.75 (then normalised). Compared with the plain unigram distribution, "
            "what does the exponent do?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Rare words are drawn more often than their share of the corpus, "
                    "frequent words less often",
                    "correct": True,
                    "feedback": "Right: $x^{0.75}$ shrinks large counts more than small ones, "
                    "so the distribution is flatter. Mikolov et al. found it works better than "
                    "both the unigram (exponent 1) and the uniform (exponent 0) distribution.",
                },
                {
                    "answer": "Frequent words are drawn even more often",
                    "correct": False,
                    "feedback": "That would be an exponent above 1. An exponent below 1 "
                    "flattens the distribution.",
                },
                {
                    "answer": "Nothing: normalising undoes the exponent",
                    "correct": False,
                    "feedback": "Normalising divides every weight by the same sum, so ratios "
                    "between words stay as the exponent made them: 100 vs 1 becomes 31.6 vs 1.",
                },
            ],
        },
        {
            "question": "With `sample = 1e-3`, a word makes up 4% of the corpus (f = 0.04). "
            "With what probability does subsampling keep each of its occurrences? "
            "(three significant digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 0.183,
                    "correct": True,
                    "feedback": "Right: $(\\sqrt{0.04 / 0.001} + 1) \\cdot 0.001 / 0.04 = "
                    "(6.32 + 1) \\cdot 0.025 \\approx 0.183$.",
                },
                {
                    "type": "value",
                    "value": 0.158,
                    "correct": False,
                    "feedback": "That is $\\sqrt{s / f}$, the paper's formula. word2vec.c and "
                    "gensim use $(\\sqrt{f/s} + 1) \\cdot s / f$, which keeps a little more.",
                },
                {
                    "type": "range",
                    "range": [0.5, 1.01],
                    "correct": False,
                    "feedback": "A word 40 times above the threshold is dropped most of the "
                    "time: that is the point of subsampling.",
                },
                {
                    "type": "default",
                    "feedback": "Compute $(\\sqrt{f/s} + 1) \\cdot s / f$ with f = 0.04 and "
                    "s = 0.001.",
                },
            ],
        },
        {
            "question": "Skip-gram with `window=2` on one sentence of 5 words, without "
            "subsampling and without shrinking the windows: how many (input, output) "
            "pairs does it train on?",
            "type": "numeric",
            "precision": 2,
            "answers": [
                {
                    "type": "value",
                    "value": 20,
                    "correct": False,
                    "feedback": "That forgets the sentence ends: the first and last words "
                    "have only 2 context words, the second and fourth 3.",
                },
                {
                    "type": "value",
                    "value": 14,
                    "correct": True,
                    "feedback": "Right: the words have 2, 3, 4, 3 and 2 context words.",
                },
                {
                    "type": "value",
                    "value": 7,
                    "correct": False,
                    "feedback": "That counts each pair of neighbours once, but each gives two "
                    "pairs: each word predicts the other.",
                },
                {
                    "type": "default",
                    "feedback": "Count, for each of the 5 positions, the words at most 2 "
                    "positions away inside the sentence.",
                },
            ],
        },
        {
            "question": "One skip-gram pair with `negative=5` is trained. Which vectors change?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Every output vector, because the softmax normalises over the "
                    "whole vocabulary",
                    "correct": False,
                    "feedback": "That is the full softmax, which negative sampling replaces: "
                    "it is what makes word2vec cheap.",
                },
                {
                    "answer": "Only the input vector of the input word",
                    "correct": False,
                    "feedback": "The output vectors (`syn1neg`) are trained too: the loss "
                    "depends on them through the scores $u \\cdot v$.",
                },
                {
                    "answer": "The input vector of the input word and the output vectors of "
                    "the true word and of the 5 noise words",
                    "correct": True,
                    "feedback": "Right: 7 rows out of the two tables. That is why the "
                    "updates are sparse (`scatter_add_` on those rows only) and fast.",
                },
            ],
        },
        {
            "question": "CBOW with a full window of 2 words on each side: the 4 context "
            "vectors are averaged into h, and one step changes h by Δ. What do word2vec.c, "
            "gensim and `lessons.word2vec` add to the input vector of each context word?",
            "type": "multiple_choice",
            "answers": [
                {
                    "answer": "Δ, the whole change of the mean",
                    "correct": True,
                    "feedback": "Right: each context word gets the mean's whole update. The "
                    "exact gradient of a mean would give each Δ / 4; the original code chose "
                    "the larger step, and gensim and we follow it.",
                },
                {
                    "answer": "Δ / 4, its share of the mean",
                    "correct": False,
                    "feedback": "That is what the chain rule through the mean gives, but not "
                    "what word2vec.c does: it adds the whole Δ to every context word.",
                },
                {
                    "answer": "Nothing: only the output vectors learn in CBOW",
                    "correct": False,
                    "feedback": "The input vectors are the word vectors we keep; they must "
                    "learn. Each context word's input vector moves with the mean.",
                },
            ],
        },
        {
            "question": "At the start of training, `syn1neg` is all zeros, so every score "
            "is 0. What is the loss of one pair with `negative=5`? (three significant "
            "digits)",
            "type": "numeric",
            "precision": 3,
            "answers": [
                {
                    "type": "value",
                    "value": 4.16,
                    "correct": True,
                    "feedback": "Right: each of the 6 terms is $-\\log \\sigma(0) = \\log 2 "
                    "\\approx 0.693$, and $6 \\log 2 \\approx 4.16$.",
                },
                {
                    "type": "value",
                    "value": 0.693,
                    "correct": False,
                    "feedback": "That is one term. The loss has one for the true word and one "
                    "for each of the 5 noise words.",
                },
                {
                    "type": "value",
                    "value": 0,
                    "correct": False,
                    "feedback": "A score of 0 means σ = 1/2: the model is unsure, and "
                    "$-\\log(1/2)$ is not 0.",
                },
                {"type": "default", "feedback": "Use $\\sigma(0) = 1/2$ in each of the 6 terms."},
            ],
        },
    ],
)
