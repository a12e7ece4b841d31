"""Train the WordPiece vocabulary of chapter 5's tiny BERT and ship it in the package.

`lessons.wordpiece.train_wordpiece` learns ``--vocab-size`` entries (8,000 by default,
so that the tiny model's embedding matrix stays small) from the sentences of the
Wikipedia sample's training split, each sentence joined by spaces. The vocabulary is
written to ``src/lessons/pretrained/bert-tiny.vocab.txt`` (one entry a line, the line
number is the id) and its statistics are saved as the results ``wordpiece``: the time it
took, and on the validation split how many words are cut into more than one piece and
how many pieces a word takes on average, next to the same numbers for the real
all-MiniLM-L6-v2 vocabulary (30,522 entries, learned on far more text).

The shipped vocabulary comes from::

    .venv/bin/python scripts/train_wordpiece.py --vocab-size 8000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lessons.core import data
from lessons.core.results import save_results
from lessons.wordpiece import WordPieceTokenizer, basic_tokenize, train_wordpiece

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "src" / "lessons" / "pretrained"

#: Words whose pieces the results show, common and rare.
EXAMPLES = ("the", "tokenization", "unaffable", "photosynthesis", "wikipedia", "neuroscience")


def piece_statistics(tokenizer: WordPieceTokenizer, words: list[str]) -> dict[str, float]:
    """Share of ``words`` cut into more than one piece, pieces per word, share of [UNK]."""
    pieces = [tokenizer.tokenize(word) for word in words]
    return {
        "words": len(words),
        "split_share": sum(len(p) > 1 for p in pieces) / len(words),
        "pieces_per_word": sum(map(len, pieces)) / len(words),
        "unk_share": sum(p == ["[UNK]"] for p in pieces) / len(words),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=8_000)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--output", type=Path, default=PRETRAINED_DIR / "bert-tiny.vocab.txt")
    args = parser.parse_args(argv)

    texts = [" ".join(sentence) for sentence in data.wikipedia("train")]
    start = time.perf_counter()
    vocab = train_wordpiece(texts, args.vocab_size, args.min_frequency, progress=True)
    seconds = time.perf_counter() - start
    args.output.write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
    print(f"{len(vocab)} entries in {seconds:.1f} s -> {args.output}")

    validation = [
        word
        for sentence in data.wikipedia("validation")
        for word in basic_tokenize(" ".join(sentence))
    ]
    ours = WordPieceTokenizer.from_vocab_file(args.output)
    minilm = WordPieceTokenizer.from_minilm()
    # The characters, plain and ##, that come before the learned entries.
    alphabet_size = sum(len(token.removeprefix("##")) == 1 for token in vocab[5:])
    results = {
        "corpus": "Wikipedia sample, training split (sentences joined by spaces)",
        "training_words": sum(len(basic_tokenize(text)) for text in texts),
        "vocab_size": len(vocab),
        "min_frequency": args.min_frequency,
        "alphabet_size": alphabet_size,
        "seconds": round(seconds, 2),
        "validation": {
            "tiny": piece_statistics(ours, validation),
            "minilm": {"vocab_size": len(minilm), **piece_statistics(minilm, validation)},
        },
        "examples": {
            word: {"tiny": ours.tokenize(word), "minilm": minilm.tokenize(word)}
            for word in EXAMPLES
        },
    }
    for name in ("tiny", "minilm"):
        stats = results["validation"][name]
        print(
            f"{name}: {stats['split_share']:.1%} of {stats['words']} validation words split, "
            f"{stats['pieces_per_word']:.3f} pieces per word, {stats['unk_share']:.2%} [UNK]"
        )
    for word, pieces in results["examples"].items():
        print(f"{word}: {pieces['tiny']} | MiniLM {pieces['minilm']}")
    command = "python scripts/train_wordpiece.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    path = save_results("wordpiece", results, command=command.strip())
    print(f"saved {path}")


if __name__ == "__main__":
    main()
