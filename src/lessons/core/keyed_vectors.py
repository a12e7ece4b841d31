"""Word vectors and their evaluations: the word -> vector table of every chapter with them.

`KeyedVectors` mirrors gensim's class of the same name and gives the same numbers on
the same vectors: nearest neighbours, similarities, word-pair correlations
(WordSim-353, SimLex-999), analogies, and word2vec.c's file format. Chapter 1's
word2vec and its count-based baseline both return one; later chapters compare with it.

Used in: notebooks/01_word2vec.ipynb (sections 4 to 6) and notebooks/02_elmo.ipynb.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import stats

__all__ = ["KeyedVectors", "UnknownWordError"]


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

    Used in: notebooks/01_word2vec.ipynb, sections 4 (neighbours, analogies) and 5
    (evaluation, files).
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

        Used in: notebooks/01_word2vec.ipynb, section 5.
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

        Used in: notebooks/01_word2vec.ipynb, sections 4 and 5.
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

    def save_word2vec_format(self, path: str | Path, binary: bool = False) -> None:
        """Write the vectors in word2vec.c's format, which gensim's
        ``KeyedVectors.load_word2vec_format(path, binary=binary)`` reads.

        Both variants open with the line ``<number of words> <vector size>`` and list the
        words in the order of ``index_to_key``, encoded as UTF-8. The text variant
        (``binary=False``) writes one line per word, ``word v1 v2 ...``, each number with
        9 significant digits (enough to read back the same float32). The binary variant,
        how word2vec.c and most published vectors store them, writes for each word its
        bytes, a space, ``vector_size`` little-endian float32 numbers (4 bytes each), and
        a newline, as word2vec.c does (gensim omits that newline; both readers accept
        either).

        Used in: notebooks/01_word2vec.ipynb, section 5.
        """
        if not isinstance(binary, bool):
            raise TypeError(f"binary: expected True or False, got {type(binary).__name__}")
        for word in self.index_to_key:
            if not word or any(c.isspace() for c in word):
                raise ValueError(
                    f"cannot save the word {word!r}: the word2vec format separates fields "
                    "with spaces, so a word must be non-empty and hold no white space"
                )
        header = f"{len(self)} {self.vector_size}\n".encode()
        with open(path, "wb") as f:
            f.write(header)
            if binary:
                rows = self.vectors.numpy().astype("<f4")
                for word, row in zip(self.index_to_key, rows, strict=True):
                    f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
            else:
                for word, row in zip(self.index_to_key, self.vectors.tolist(), strict=True):
                    line = word + " " + " ".join(f"{x:.9g}" for x in row) + "\n"
                    f.write(line.encode("utf-8"))

    @classmethod
    def load_word2vec_format(cls, path: str | Path, binary: bool = False) -> KeyedVectors:
        """Read vectors in word2vec.c's format: text (``binary=False``) or binary
        (``binary=True``), as gensim's ``save_word2vec_format(path, binary=binary)`` and
        word2vec.c write them (see `save_word2vec_format`); words are UTF-8.

        Used in: notebooks/01_word2vec.ipynb, section 5.
        """
        if not isinstance(binary, bool):
            raise TypeError(f"binary: expected True or False, got {type(binary).__name__}")
        content = Path(path).read_bytes()
        end_of_header = content.find(b"\n")
        header = content[: max(end_of_header, 0)].split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            shown = content[: end_of_header if 0 <= end_of_header < 40 else 40]
            raise ValueError(
                f"{path}: the first line must be '<number of words> <vector size>', got {shown!r}"
            )
        n, size = int(header[0]), int(header[1])
        body = content[end_of_header + 1 :]
        read = _read_binary if binary else _read_text
        words, vectors = read(body, n, size, str(path))
        return cls(words, torch.from_numpy(vectors))


def _read_text(body: bytes, n: int, size: int, path: str) -> tuple[list[str], np.ndarray]:
    """The words and ``(n, size)`` float32 vectors of a text word2vec file's lines."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: byte {error.start + 1} after the header is not UTF-8 text; a file in "
            "word2vec.c's binary format is read with binary=True"
        ) from None
    words, rows = [], []
    for line_no, line in enumerate(text.splitlines(), start=2):
        if not line.strip():
            continue
        word, *values = line.rstrip().split(" ")
        if len(values) != size:
            raise ValueError(
                f"{path}, line {line_no}: expected {size} numbers after the word {word!r}, "
                f"got {len(values)}"
            )
        words.append(word)
        rows.append([float(v) for v in values])
    if len(words) != n:
        raise ValueError(f"{path}: the header announces {n} words but the file has {len(words)}")
    return words, np.array(rows, dtype=np.float32).reshape(n, size)


def _read_binary(body: bytes, n: int, size: int, path: str) -> tuple[list[str], np.ndarray]:
    """The words and ``(n, size)`` float32 vectors of a binary word2vec file's records:
    ``word<space><size little-endian float32>``, each optionally followed by a newline."""
    width = 4 * size
    words, vectors = [], np.empty((n, size), dtype=np.float32)
    position = 0
    for i in range(n):
        while body[position : position + 1] == b"\n":  # word2vec.c's newline after a vector
            position += 1
        space = body.find(b" ", position)
        if space < 0 or space + 1 + width > len(body):
            raise ValueError(
                f"{path}: the header announces {n} words of {size} numbers but the file ends "
                f"after {i}; is it in the text format (binary=False)?"
            )
        try:
            words.append(body[position:space].decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(
                f"{path}: word {i + 1} ({body[position:space][:40]!r}) is not UTF-8"
            ) from None
        vectors[i] = np.frombuffer(body, dtype="<f4", count=size, offset=space + 1)
        position = space + 1 + width
    if body[position:].strip(b"\n"):
        raise ValueError(
            f"{path}: {len(body) - position} bytes follow the {n} words the header "
            "announces; is it in the text format (binary=False)?"
        )
    return words, vectors


def _as_list(items: Query | Sequence[Query] | None) -> list[Query]:
    if items is None:
        return []
    if isinstance(items, str | torch.Tensor):
        return [items]
    return list(items)
