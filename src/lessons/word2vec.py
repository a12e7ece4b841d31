"""word2vec from scratch: skip-gram and CBOW with negative sampling, against gensim.

Used in: notebooks/01_word2vec.ipynb.

The interface mirrors gensim's, so a reader can move between the two::

    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1)
    model.wv.most_similar("king")                        # as gensim's model.wv
    model.wv.evaluate_word_pairs(data.wordsim353_path())  # same numbers as gensim's

Names follow word2vec.c and gensim: ``syn0`` (= ``wv.vectors``) holds the input vectors,
``syn1neg`` the output vectors of negative sampling, ``cum_table`` the cumulative noise
distribution (gensim's name), ``unigram_table`` the table noise words are drawn from
(word2vec.c's) and ``keep_probability`` the chance that subsampling keeps a word.

`KeyedVectors` is the word -> vector table every chapter that has word vectors uses (the
count-based baseline of ``lessons.ppmi`` returns one too).
"""

from __future__ import annotations

import difflib
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from lessons import quiz
from lessons.exercises import Attempt, Case, Exercise, Hint, register
from lessons.vocab import check_sentences

__all__ = [
    "KeyedVectors",
    "UnknownWordError",
    "Word2Vec",
    "analogy",
    "cosine_neighbours",
    "keep_probability",
    "log_sigmoid",
    "negative_sampling_gradients",
    "negative_sampling_loss",
    "noise_distribution",
]


class UnknownWordError(KeyError):
    """A word that is not in the vocabulary; the message says why and suggests close words."""

    def __init__(self, word: str, message: str):
        super().__init__(word)
        self.word = word
        self.message = message

    def __str__(self) -> str:
        return self.message


Query = str | torch.Tensor


class KeyedVectors:
    """Words and their vectors: ``vectors[i]`` is the vector of ``index_to_key[i]``.

    ``KeyedVectors(index_to_key, vectors)`` takes the words (unique strings, normally most
    frequent first) and a float tensor of shape ``(len(index_to_key), vector_size)``; it is
    stored as float32. Optionally ``counts`` (how often every word of the training corpus
    occurs, kept or not) and ``min_count`` let an unknown-word error say why a word is
    missing.

    The methods mirror gensim's ``KeyedVectors`` and give the same numbers on the same
    vectors: ``most_similar``, ``similarity``, ``evaluate_word_pairs``,
    ``evaluate_word_analogies``, ``save_word2vec_format`` and ``load_word2vec_format``.

    Used in: notebooks/01_word2vec.ipynb (sections "Nearest neighbours", "Evaluation").
    """

    def __init__(
        self,
        index_to_key: Sequence[str],
        vectors: torch.Tensor | np.ndarray,
        *,
        counts: Mapping[str, int] | None = None,
        min_count: int | None = None,
    ):
        words = list(index_to_key)
        for position, word in enumerate(words):
            if not isinstance(word, str):
                raise TypeError(
                    f"index_to_key: expected strings, got {type(word).__name__} {word!r} "
                    f"at position {position}"
                )
        vectors = torch.as_tensor(vectors)
        if vectors.dim() != 2 or not vectors.is_floating_point():
            raise ValueError(
                f"vectors: expected a 2-D float tensor (words, vector_size), got "
                f"{vectors.dtype} of shape {tuple(vectors.shape)}"
            )
        if vectors.shape[0] != len(words):
            raise ValueError(
                f"vectors has {vectors.shape[0]} rows but index_to_key has {len(words)} words"
            )
        key_to_index = {word: i for i, word in enumerate(words)}
        if len(key_to_index) != len(words):
            duplicate = next(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"index_to_key: the word {duplicate!r} appears more than once")
        self.index_to_key: list[str] = words
        self.key_to_index: dict[str, int] = key_to_index
        self.vectors: torch.Tensor = vectors.detach().to(torch.float32)
        self.counts = dict(counts) if counts is not None else None
        self.min_count = min_count

    # ------------------------------------------------------------------ lookup

    @property
    def vector_size(self) -> int:
        """The number of dimensions of every vector."""
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self)} words, vector_size={self.vector_size})"

    def get_index(self, word: str) -> int:
        """The row of ``word`` in ``vectors``; `UnknownWordError` if it has none."""
        if not isinstance(word, str):
            raise TypeError(f"expected a word (str), got {type(word).__name__} {word!r}")
        index = self.key_to_index.get(word)
        if index is None:
            raise UnknownWordError(word, self._unknown_message(word))
        return index

    def _unknown_message(self, word: str) -> str:
        message = f"the word {word!r} is not in the vocabulary ({len(self):,} words)"
        if self.counts is not None:
            seen = self.counts.get(word, 0)
            if seen and self.min_count is not None:
                message += (
                    f": it occurs {seen} time{'s' * (seen != 1)} in the training corpus, "
                    f"fewer than min_count={self.min_count}"
                )
            elif not seen:
                message += ": it never occurs in the training corpus"
        close = difflib.get_close_matches(word, self.index_to_key, n=3)
        if close:
            message += "; close words in the vocabulary: " + ", ".join(close)
        return message

    def __getitem__(self, words: str | Sequence[str]) -> torch.Tensor:
        """The vector of a word, shape ``(vector_size,)``, or of a list of words,
        shape ``(len(words), vector_size)``."""
        if not isinstance(words, list | tuple):
            return self.vectors[self.get_index(words)]
        return self.vectors[[self.get_index(w) for w in words]]

    def unit_vectors(self) -> torch.Tensor:
        """Every vector divided by its length (zero vectors stay zero): ``(words, vector_size)``."""
        return self.vectors / self.vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)

    # ------------------------------------------------------------------ similarity

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the vectors of words ``a`` and ``b``."""
        va, vb = self[a], self[b]
        return float(va @ vb / (va.norm().clamp_min(1e-12) * vb.norm().clamp_min(1e-12)))

    def _query_vector(self, item: Query) -> torch.Tensor:
        if isinstance(item, torch.Tensor):
            if item.shape != (self.vector_size,):
                raise ValueError(
                    f"a query vector must have shape ({self.vector_size},), got {tuple(item.shape)}"
                )
            vector = item.to(torch.float32)
        else:
            vector = self[item]
        return vector / vector.norm().clamp_min(1e-12)

    def most_similar(
        self,
        positive: Query | Sequence[Query] | None = None,
        negative: Query | Sequence[Query] | None = None,
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """The ``topn`` words whose vectors have the largest cosine with the query.

        The query is the mean of the unit vectors of ``positive`` minus those of
        ``negative`` (words or vectors), as in gensim: ``most_similar(positive=["king",
        "woman"], negative=["man"])`` answers "man is to king as woman is to ?". The query
        words themselves are left out. ``restrict_vocab`` searches only the first words.
        """
        positive = _as_list(positive)
        negative = _as_list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        if not isinstance(topn, int) or topn < 1:
            raise ValueError(f"topn: expected an int >= 1, got {topn!r}")
        terms = [self._query_vector(p) for p in positive] + [
            -self._query_vector(n) for n in negative
        ]
        query = torch.stack(terms).sum(0) / len(terms)
        query = query / query.norm().clamp_min(1e-12)
        limit = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        vectors = self.vectors[:limit]
        cosines = (vectors @ query) / vectors.norm(dim=1).clamp_min(1e-12)
        for item in positive + negative:
            if isinstance(item, str) and self.key_to_index[item] < limit:
                cosines[self.key_to_index[item]] = -math.inf
        best = torch.topk(cosines, min(topn, limit)).indices.tolist()
        return [(self.index_to_key[i], float(cosines[i])) for i in best if cosines[i] > -math.inf]

    # ------------------------------------------------------------------ evaluation

    def _folded_vocab(self, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
        """gensim's ``ok_vocab``: the first ``restrict_vocab`` words (upper-cased when
        ``case_insensitive``), each mapped to the row of its first, most frequent form."""
        fold = str.upper if case_insensitive else str
        folded: dict[str, int] = {}
        for index, word in enumerate(self.index_to_key[:restrict_vocab]):
            folded.setdefault(fold(word), index)
        return folded

    def evaluate_word_pairs(
        self,
        pairs: str | Path,
        delimiter: str = "\t",
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> tuple[tuple[float, float], tuple[float, float], float]:
        """Correlation of our cosine similarities with human scores, as gensim computes it.

        ``pairs`` is a file of ``word1<TAB>word2<TAB>score`` lines (``#`` starts a comment),
        such as ``data.wordsim353_path()``. Pairs with a word outside the first
        ``restrict_vocab`` words are skipped. Returns ``(pearson, spearman, oov_ratio)``:
        each ``(coefficient, p-value)``, and the percentage of pairs skipped.

        Used in: notebooks/01_word2vec.ipynb section "Evaluation".
        """
        ok_vocab = self._folded_vocab(restrict_vocab, case_insensitive)
        gold, index_a, index_b, oov = [], [], [], 0
        for line in Path(pairs).read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("#"):
                continue
            fields = line.split(delimiter)
            if len(fields) != 3:
                continue
            a, b, score = (f.upper() for f in fields) if case_insensitive else fields
            try:
                value = float(score)
            except ValueError:
                continue
            if a not in ok_vocab or b not in ok_vocab:
                oov += 1
                continue
            gold.append(value)
            index_a.append(ok_vocab[a])
            index_b.append(ok_vocab[b])
        if not gold:
            raise ValueError(f"no word pair of {pairs} has both words in the vocabulary")
        unit = self.unit_vectors().double()
        model = (unit[index_a] * unit[index_b]).sum(1).numpy()
        pearson = stats.pearsonr(gold, model)
        spearman = stats.spearmanr(gold, model)
        return (
            (float(pearson.statistic), float(pearson.pvalue)),
            (float(spearman.statistic), float(spearman.pvalue)),
            100.0 * oov / (len(gold) + oov),
        )

    def evaluate_word_analogies(
        self,
        analogies: str | Path,
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> tuple[float, list[dict[str, object]]]:
        """Accuracy on "a is to b as c is to d" questions with 3CosAdd, as gensim computes it.

        ``analogies`` is a file of ``: section`` lines followed by ``a b c d`` lines, such as
        ``data.analogies_path()``. The answer is the word, other than a, b and c, whose
        vector is closest (cosine) to unit(b) - unit(a) + unit(c) among the first
        ``restrict_vocab`` words; questions with a word outside those are skipped. Returns
        ``(score, sections)`` like gensim: the overall accuracy and, per section, a dict
        with ``"section"``, ``"correct"`` and ``"incorrect"`` (lists of the questions,
        upper-cased when ``case_insensitive``), the last one being ``"Total accuracy"``.

        Used in: notebooks/01_word2vec.ipynb section "Evaluation".
        """
        ok_vocab = self._folded_vocab(restrict_vocab, case_insensitive)
        sections: list[dict[str, object]] = []
        questions: list[tuple[int, tuple[str, str, str, str]]] = []  # (section, words)
        total = 0
        for line in Path(analogies).read_text(encoding="utf-8").splitlines():
            if line.startswith(": "):
                sections.append(
                    {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
                )
                continue
            words = line.split()
            if len(words) != 4:
                continue
            if not sections:
                raise ValueError(f"{analogies}: a question comes before the first ': section' line")
            total += 1
            if case_insensitive:
                words = [w.upper() for w in words]
            if all(w in ok_vocab for w in words):
                questions.append((len(sections) - 1, tuple(words)))
        if not total:
            raise ValueError(f"{analogies} holds no analogy question")
        if questions:
            predicted = self._solve_analogies(
                torch.tensor([[ok_vocab[w] for w in q[:3]] for _, q in questions]),
                ok_vocab,
                min(restrict_vocab, len(self)),
                case_insensitive,
            )
            for (section, words), guess in zip(questions, predicted.tolist(), strict=True):
                outcome = "correct" if guess == ok_vocab[words[3]] else "incorrect"
                sections[section][outcome].append(words)
        total_section = {
            "section": "Total accuracy",
            "correct": [q for s in sections for q in s["correct"]],
            "incorrect": [q for s in sections for q in s["incorrect"]],
        }
        sections.append(total_section)
        answered = len(total_section["correct"]) + len(total_section["incorrect"])
        score = len(total_section["correct"]) / answered if answered else 0.0
        return score, sections

    def _solve_analogies(
        self,
        abc: torch.Tensor,
        ok_vocab: dict[str, int],
        limit: int,
        case_insensitive: bool,
        chunk: int = 2048,
    ) -> torch.Tensor:
        """3CosAdd for many questions at once. ``abc``: ``(questions, 3)`` rows of a, b, c.

        Returns ``(questions,)``: the folded row (see `_folded_vocab`) of each answer.
        """
        fold = str.upper if case_insensitive else str
        folded = torch.tensor([ok_vocab[fold(w)] for w in self.index_to_key[:limit]])
        unit = self.unit_vectors()
        vectors = self.vectors[:limit]
        norms = vectors.norm(dim=1).clamp_min(1e-12)
        answers = []
        for start in range(0, len(abc), chunk):
            a, b, c = abc[start : start + chunk].unbind(1)
            query = (unit[b] + unit[c] - unit[a]) / 3
            query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
            cosines = (query @ vectors.T) / norms  # (chunk, limit)
            for inputs in (a, b, c):  # leave out a, b, c and every other case of them
                cosines[folded[None, :] == inputs[:, None]] = -math.inf
            answers.append(folded[cosines.argmax(dim=1)])
        return torch.cat(answers)

    # ------------------------------------------------------------------ files

    def save_word2vec_format(self, path: str | Path) -> None:
        """Write the vectors in word2vec.c's text format, which gensim's
        ``KeyedVectors.load_word2vec_format(path)`` reads: a line ``<words> <size>``, then
        one line per word, ``word v1 v2 ...``, in the order of ``index_to_key``."""
        for word in self.index_to_key:
            if not word or any(c.isspace() for c in word):
                raise ValueError(
                    f"cannot save the word {word!r}: the word2vec format separates fields "
                    "with spaces, so a word must be non-empty and hold no white space"
                )
        lines = [f"{len(self)} {self.vector_size}"]
        for word, row in zip(self.index_to_key, self.vectors.tolist(), strict=True):
            lines.append(word + " " + " ".join(f"{x:.9g}" for x in row))
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load_word2vec_format(cls, path: str | Path) -> KeyedVectors:
        """Read vectors in word2vec.c's text format (what gensim's
        ``save_word2vec_format(path)`` writes)."""
        with open(path, encoding="utf-8") as f:
            header = f.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise ValueError(
                    f"{path}: the first line must be '<number of words> <vector size>', "
                    f"got {' '.join(header)!r}"
                )
            n, size = int(header[0]), int(header[1])
            words, rows = [], []
            for line_no, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                word, *values = line.rstrip().split(" ")
                if len(values) != size:
                    raise ValueError(
                        f"{path}, line {line_no}: expected {size} numbers after the word "
                        f"{word!r}, got {len(values)}"
                    )
                words.append(word)
                rows.append([float(v) for v in values])
        if len(words) != n:
            raise ValueError(
                f"{path}: the header announces {n} words but the file has {len(words)}"
            )
        return cls(words, torch.tensor(rows, dtype=torch.float32).reshape(n, size))


def _as_list(items: Query | Sequence[Query] | None) -> list[Query]:
    if items is None:
        return []
    if isinstance(items, str | torch.Tensor):
        return [items]
    return list(items)


# ---------------------------------------------------------------------- the pieces


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log σ(x) = -log(1 + exp(-x)), without overflow for large ``|x|``.

    For x >= 0 it is ``-log1p(exp(-x))``; for x < 0 it is ``x - log1p(exp(x))``: both only
    ever exponentiate a non-positive number.

    Used in: notebooks/01_word2vec.ipynb section "The loss".
    """
    return torch.minimum(x, torch.zeros_like(x)) - torch.log1p(torch.exp(-x.abs()))


def negative_sampling_loss(
    inputs: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Negative-sampling loss of each pair of a batch: ``(batch,)``.

    ``inputs`` ``(batch, d)`` are input vectors v (rows of ``syn0``, or the mean of a CBOW
    context), ``positives`` ``(batch, d)`` the output vectors u_o of the true words (rows of
    ``syn1neg``) and ``negatives`` ``(batch, negative, d)`` the output vectors u_k of the
    noise words. The loss is ``-log σ(u_o·v) - Σ_k log σ(-u_k·v)``.

    Used in: notebooks/01_word2vec.ipynb section "The loss".
    """
    positive_scores = (inputs * positives).sum(-1)  # (batch,)
    negative_scores = torch.einsum("bkd,bd->bk", negatives, inputs)  # (batch, negative)
    return -log_sigmoid(positive_scores) - log_sigmoid(-negative_scores).sum(-1)


def negative_sampling_gradients(
    inputs: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of `negative_sampling_loss` and its gradients, by hand.

    ``inputs`` ``(batch, d)`` are the input vectors v; ``outputs`` ``(batch, 1 + negative,
    d)`` the output vectors, the true word's u_o first, then the noise words' u_k;
    ``weights`` ``(batch, 1 + negative)`` is 1, or 0 for a noise word that happens to be
    the true word (word2vec.c skips those).

    With s = u·v the score of an output word and label 1 for the true word, 0 for noise,
    the derivative of its loss term (``-log σ(s)`` or ``-log σ(-s)``) by s is the error
    ``σ(s) - label``; the chain rule through s = u·v multiplies it by v for u and by u for v.

    Returns ``(loss (batch,), grad_inputs (batch, d), grad_outputs (batch, 1 + negative,
    d))``, the gradients multiplied by ``scale`` (SGD passes minus the learning rate: that
    gives the updates directly, without another pass over the largest tensor).

    Used in: notebooks/01_word2vec.ipynb section "Gradients by hand".
    """
    scores = (outputs * inputs[:, None, :]).sum(-1)  # (batch, 1 + negative)
    signs = torch.ones_like(scores)
    signs[:, 1:] = -1  # +1 for the true word, -1 for noise words
    loss = -(torch.nn.functional.logsigmoid(signs * scores) * weights).sum(1)
    labels = (signs > 0).to(scores.dtype)
    error = (torch.sigmoid(scores) - labels) * weights * scale  # (batch, 1 + negative)
    grad_inputs = torch.bmm(error[:, None, :], outputs)[:, 0, :]  # (batch, d)
    grad_outputs = error[:, :, None] * inputs[:, None, :]  # (batch, 1 + negative, d)
    return loss, grad_inputs, grad_outputs


def noise_distribution(counts: torch.Tensor, exponent: float = 0.75) -> torch.Tensor:
    """The distribution negative samples are drawn from: ``counts ** exponent``, normalised.

    ``counts`` ``(vocab,)``; returns float64 probabilities ``(vocab,)``. Raising to 0.75
    flattens the unigram distribution: rare words are drawn more often than their share.

    Used in: notebooks/01_word2vec.ipynb section "Negative sampling".
    """
    weights = counts.to(torch.float64) ** exponent
    return weights / weights.sum()


def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """The chance that subsampling keeps each occurrence of a word: ``(vocab,)`` float64.

    With f = count / total the word's share of the corpus and s = ``sample``, word2vec.c and
    gensim keep it with probability ``(sqrt(f / s) + 1) * s / f``, at most 1. Words with
    f <= s are always kept; "the" (f ≈ 0.05 with s = 1e-3) is kept about one time in six.
    ``sample=0`` keeps everything.

    Used in: notebooks/01_word2vec.ipynb section "Subsampling frequent words".
    """
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts)
    share = counts / counts.sum()
    return ((torch.sqrt(share / sample) + 1) * sample / share).clamp(max=1.0)


def cosine_neighbours(vectors: torch.Tensor, query: torch.Tensor, topn: int) -> torch.Tensor:
    """Rows of ``vectors`` ``(n, d)`` with the largest cosine to ``query`` ``(d,)``:
    their indices ``(topn,)``, most similar first (a zero row has cosine 0).

    Used in: notebooks/01_word2vec.ipynb section "Nearest neighbours".
    """
    norms = vectors.norm(dim=1).clamp_min(1e-12) * query.norm().clamp_min(1e-12)
    return torch.topk(vectors @ query / norms, topn).indices


def analogy(vectors: torch.Tensor, a: int, b: int, c: int) -> int:
    """3CosAdd: "a is to b as c is to ?" answered by the row, other than a, b and c, with
    the largest cosine to unit(b) - unit(a) + unit(c). ``vectors`` ``(n, d)``.

    Used in: notebooks/01_word2vec.ipynb section "Analogies".
    """
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosines = unit @ (unit[b] - unit[a] + unit[c])
    cosines[[a, b, c]] = -math.inf
    return int(cosines.argmax())


# ---------------------------------------------------------------------- training


def _count_words(sentences: Iterable[Sequence[str]]) -> tuple[Counter[str], list[Sequence[str]]]:
    """Check the corpus (`lessons.vocab.check_sentences`) and count its tokens."""
    corpus = check_sentences(sentences)
    counts: Counter[str] = Counter()
    for sentence in corpus:
        counts.update(sentence)
    return counts, corpus


#: The default batch size: fast on a CPU, and as good as gensim on the Wikipedia sample.
MAX_BATCH_SIZE = 4096
#: With the default batch size, an epoch takes at least this many SGD steps.
MIN_STEPS_PER_EPOCH = 100
#: Slots of the unigram table noise words are drawn from (word2vec.c uses 1e8; a word whose
#: noise probability is p gets round(p * size) slots, so 1e6 keeps the error below 1e-6).
UNIGRAM_TABLE_SIZE = 1_000_000


def _rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table[ids]``: shape ``(*ids.shape, d)`` (``index_select``, faster than indexing)."""
    return table.index_select(0, ids.reshape(-1)).view(*ids.shape, table.shape[1])


def _add_rows(table: torch.Tensor, ids: torch.Tensor, updates: torch.Tensor) -> None:
    """``table[ids] += updates`` in place, summing over repeated ids; ``updates`` has shape
    ``(*ids.shape, d)``. (``scatter_add_``: like ``index_add_``, and faster on the CPU.)"""
    d = table.shape[1]
    flat_ids = ids.reshape(-1, 1).expand(-1, d)
    table.scatter_add_(0, flat_ids, updates.reshape(-1, d))


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


class Word2Vec:
    """word2vec with negative sampling, trained when constructed, like gensim's ``Word2Vec``.

    ``sentences`` is a list of sentences, each a list of string tokens. ``sg=1`` trains
    skip-gram (each context word predicts the centre word), ``sg=0`` CBOW (the mean of the
    context vectors predicts the centre word). The other arguments have gensim's names and
    defaults: ``vector_size``, ``window`` (largest distance between centre and context),
    ``min_count`` (rarer words are dropped), ``negative`` (noise words per true word),
    ``ns_exponent`` (of the noise distribution), ``sample`` (subsampling threshold),
    ``alpha`` -> ``min_alpha`` (learning rate, decayed linearly), ``epochs`` and ``seed``.
    ``batch_size`` is how many (input, output) pairs one update uses (ours only: gensim
    updates after every pair). Training needs enough updates, so by default (``None``) it
    is `MAX_BATCH_SIZE` pairs, or fewer where that leaves an epoch `MIN_STEPS_PER_EPOCH`
    updates (a tiny corpus learns nothing from a handful of huge steps).
    ``progress=False`` hides the progress bar.

    What one epoch does, as in word2vec.c: drop each occurrence of a word with probability
    ``1 - keep_probabilities[word]``; shrink the window of each centre word to a random
    ``window - b`` with b uniform in ``[0, window)``; make every (context, centre) pair in
    those windows, within a sentence; shuffle them and take SGD steps on batches, drawing
    ``negative`` noise words per pair from ``unigram_table``. In CBOW each context word gets the
    whole update of the mean, as in word2vec.c and gensim (the exact gradient would give it
    1/count of that). Unlike gensim, one step sums the updates of a whole batch.

    After training: ``wv`` (a `KeyedVectors`: the input vectors ``syn0``), ``syn1neg``
    (the output vectors), ``history`` (one dict per epoch: ``epoch``, ``loss`` (the mean
    over its examples), ``examples`` (pairs, or CBOW windows), ``batch_size``, ``seconds`` and
    ``words_per_second``), ``train_seconds`` and ``words_per_second`` (raw corpus words,
    out-of-vocabulary ones included, times epochs, divided by the training time).

    Used in: notebooks/01_word2vec.ipynb sections "Training" and "Against gensim".
    """

    def __init__(
        self,
        sentences: Iterable[Sequence[str]],
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 5,
        sg: int = 1,
        negative: int = 5,
        ns_exponent: float = 0.75,
        sample: float = 1e-3,
        alpha: float = 0.025,
        min_alpha: float = 1e-4,
        epochs: int = 5,
        batch_size: int | None = None,
        seed: int = 1,
        progress: bool = True,
    ):
        self.vector_size = _positive_int("vector_size", vector_size)
        self.window = _positive_int("window", window)
        self.min_count = _positive_int("min_count", min_count)
        self.negative = _positive_int("negative", negative)
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = None if batch_size is None else _positive_int("batch_size", batch_size)
        self.seed = _positive_int("seed", seed, minimum=0)
        if sg not in (0, 1):
            raise ValueError(f"sg: expected 1 (skip-gram) or 0 (CBOW), got {sg!r}")
        if not 0 <= min_alpha <= alpha or alpha <= 0:
            raise ValueError(
                f"need 0 <= min_alpha <= alpha and alpha > 0, got alpha={alpha}, "
                f"min_alpha={min_alpha}"
            )
        if sample < 0:
            raise ValueError(
                f"sample: expected a number >= 0 (0 turns subsampling off), got {sample}"
            )
        self.sg, self.ns_exponent, self.sample = sg, ns_exponent, sample
        self.alpha, self.min_alpha, self.progress = alpha, min_alpha, progress

        raw_counts, corpus = _count_words(sentences)
        self.corpus_words = sum(raw_counts.values())
        kept = sorted(
            (w for w, n in raw_counts.items() if n >= min_count), key=lambda w: (-raw_counts[w], w)
        )
        if not kept:
            top, top_count = raw_counts.most_common(1)[0]
            raise ValueError(
                f"no word occurs at least min_count={min_count} times: the most frequent, "
                f"{top!r}, occurs {top_count} time{'s' * (top_count != 1)}; lower min_count "
                "or give more text"
            )
        self.counts = torch.tensor([raw_counts[w] for w in kept])  # (vocab,)
        self.keep_probabilities = keep_probability(self.counts, sample)  # (vocab,)
        self.cum_table = noise_distribution(self.counts, ns_exponent).cumsum(0)  # (vocab,)
        # word2vec.c's unigram table: word i fills a share of the slots equal to its noise
        # probability, so a uniform random slot is a draw from the noise distribution.
        slot_ends = torch.round(self.cum_table * UNIGRAM_TABLE_SIZE).long()
        slots = torch.diff(slot_ends, prepend=torch.zeros(1, dtype=torch.long))
        self.unigram_table = torch.repeat_interleave(torch.arange(len(kept)), slots)

        self._torch_rng = torch.Generator().manual_seed(seed)
        self._numpy_rng = np.random.default_rng(seed)
        syn0 = (torch.rand(len(kept), vector_size, generator=self._torch_rng) - 0.5) / vector_size
        self.wv = KeyedVectors(kept, syn0, counts=raw_counts, min_count=min_count)
        self.syn1neg = torch.zeros(len(kept), vector_size)

        # The corpus as one flat array of word ids (words below min_count left out, as gensim
        # does before it makes windows) and the sentence each token belongs to.
        index = self.wv.key_to_index
        ids = [[index.get(t, -1) for t in s] for s in corpus]
        self._ids = np.fromiter((i for s in ids for i in s), dtype=np.int64)
        self._sentence = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
        known = self._ids >= 0
        self._ids, self._sentence = self._ids[known], self._sentence[known]

        self.history: list[dict[str, float]] = []
        self._train()

    @property
    def syn0(self) -> torch.Tensor:
        """The input vectors ``(vocab, vector_size)``: the same tensor as ``wv.vectors``."""
        return self.wv.vectors

    def __repr__(self) -> str:
        kind = "skip-gram" if self.sg else "CBOW"
        return f"Word2Vec({kind}, {len(self.wv)} words, vector_size={self.vector_size})"

    # ------------------------------------------------------------------ one epoch's data

    def _subsample(self) -> tuple[np.ndarray, np.ndarray]:
        """Drop occurrences of frequent words at random: the kept ids and their sentences."""
        keep = self._numpy_rng.random(len(self._ids)) < self.keep_probabilities.numpy()[self._ids]
        return self._ids[keep], self._sentence[keep]

    def _skipgram_pairs(self, ids: np.ndarray, sentence: np.ndarray) -> np.ndarray:
        """All (input, output) = (context, centre) pairs of one epoch: ``(pairs, 2)``.

        Each centre word gets the window ``window - b``, b uniform in ``[0, window)``. One
        loop over the offsets 1..window, none over words.
        """
        reach = self.window - self._numpy_rng.integers(0, self.window, size=len(ids))
        pairs = []
        for offset in range(1, self.window + 1):
            same = sentence[offset:] == sentence[:-offset]  # positions i and i + offset
            left, right = ids[:-offset], ids[offset:]
            right_centre = same & (reach[offset:] >= offset)  # centre i + offset, context i
            left_centre = same & (reach[:-offset] >= offset)  # centre i, context i + offset
            pairs.append(np.stack([left[right_centre], right[right_centre]], 1))
            pairs.append(np.stack([right[left_centre], left[left_centre]], 1))
        return np.concatenate(pairs)

    def _cbow_windows(self, ids: np.ndarray, sentence: np.ndarray) -> np.ndarray:
        """Each centre word with its context: ``(centres, 1 + 2 * window)``, column 0 the
        centre, then the context ids, -1 where there is none (shrunk window, sentence end)."""
        reach = self.window - self._numpy_rng.integers(0, self.window, size=len(ids))
        n = len(ids)
        rows = np.full((n, 1 + 2 * self.window), -1, dtype=np.int64)
        rows[:, 0] = ids
        for offset in range(1, self.window + 1):
            same = sentence[offset:] == sentence[:-offset]
            before = same & (reach[offset:] >= offset)  # centre i + offset, context i
            after = same & (reach[:-offset] >= offset)  # centre i, context i + offset
            rows[offset:, 2 * offset - 1] = np.where(before, ids[:-offset], -1)
            rows[:-offset, 2 * offset] = np.where(after, ids[offset:], -1)
        return rows[(rows[:, 1:] >= 0).any(1)]

    # ------------------------------------------------------------------ SGD

    def _draw_negatives(self, n: int) -> torch.Tensor:
        """``(n, negative)`` noise words drawn from the noise distribution, with replacement."""
        slots = torch.randint(
            len(self.unigram_table), (n, self.negative), generator=self._torch_rng
        )
        return self.unigram_table[slots]

    def _sgd_step(self, inputs: torch.Tensor, outputs: torch.Tensor, lr: float) -> float:
        """One SGD step on a batch; returns the summed loss.

        ``inputs`` is ``(batch,)`` input word ids (skip-gram) or ``(batch, 2 * window)``
        context ids with -1 for none (CBOW); ``outputs`` ``(batch,)`` the true output words.
        """
        negatives = self._draw_negatives(len(outputs))  # (batch, negative)
        targets = torch.cat([outputs[:, None], negatives], 1)  # (batch, 1 + negative)
        weights = torch.ones(targets.shape)
        weights[:, 1:] = (negatives != outputs[:, None]).to(torch.float32)
        if self.sg:
            hidden = _rows(self.syn0, inputs)  # (batch, d)
        else:
            present = (inputs >= 0).to(torch.float32)  # (batch, 2 * window)
            count = present.sum(1, keepdim=True)
            context = inputs.clamp_min(0)
            hidden = (_rows(self.syn0, context) * present[:, :, None]).sum(1) / count  # mean
        loss, step_hidden, step_outputs = negative_sampling_gradients(
            hidden, _rows(self.syn1neg, targets), weights, scale=-lr
        )
        _add_rows(self.syn1neg, targets, step_outputs)
        if self.sg:
            _add_rows(self.syn0, inputs, step_hidden)
        else:  # like word2vec.c and gensim: each context word gets the mean's whole update
            _add_rows(self.syn0, context, step_hidden[:, None, :] * present[:, :, None])
        return float(loss.sum())

    def _train(self) -> None:
        bar = tqdm(total=self.epochs, unit="epoch", disable=not self.progress, desc="word2vec")
        start = time.perf_counter()
        for epoch in range(self.epochs):
            epoch_start = time.perf_counter()
            ids, sentence = self._subsample()
            if self.sg:
                examples = self._skipgram_pairs(ids, sentence)
                inputs_all, outputs_all = examples[:, 0], examples[:, 1]
            else:
                examples = self._cbow_windows(ids, sentence)
                inputs_all, outputs_all = examples[:, 1:], examples[:, 0]
            order = torch.from_numpy(self._numpy_rng.permutation(len(examples)))
            inputs_all = torch.from_numpy(inputs_all)[order]
            outputs_all = torch.from_numpy(outputs_all)[order]
            steps = MIN_STEPS_PER_EPOCH
            size = self.batch_size or min(MAX_BATCH_SIZE, max(1, -(-len(order) // steps)))
            total_loss = 0.0
            for first in range(0, len(order), size):
                progress = (epoch + first / len(order)) / self.epochs
                lr = self.alpha - (self.alpha - self.min_alpha) * progress
                batch = slice(first, first + size)
                total_loss += self._sgd_step(inputs_all[batch], outputs_all[batch], lr)
            seconds = time.perf_counter() - epoch_start
            self.history.append(
                {
                    "epoch": epoch + 1,
                    "loss": total_loss / max(len(order), 1),
                    "examples": len(order),
                    "batch_size": size,
                    "seconds": seconds,
                    "words_per_second": self.corpus_words / seconds,
                }
            )
            bar.set_postfix(
                loss=f"{self.history[-1]['loss']:.3f}",
                words_per_s=f"{self.corpus_words / seconds:,.0f}",
            )
            bar.update()
        bar.close()
        self.train_seconds = time.perf_counter() - start
        self.words_per_second = self.corpus_words * self.epochs / self.train_seconds


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
                    "updates are sparse (`index_add_`) and fast.",
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
