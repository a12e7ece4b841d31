"""lessons: the tested code behind the book *Attention, built and tested*.

Start with ``print(lessons.check_environment())``. The layout and the import rules
are in ``README.md`` beside this file; in short:

* ``lessons.core``: shared plumbing (argument checks, data, vocabulary, tasks, the
  training loop, plotting, checkpoints, source display, environment, ...);
* the chapter modules, in the book's order (`CHAPTER_MODULES`): each holds what its
  chapter teaches, in the chapter's order;
* ``lessons.figures``: each chapter's figures; ``lessons.exercises``: each chapter's
  exercises and quiz, with the framework that checks them.
"""

from importlib.metadata import PackageNotFoundError, version

from lessons.core.environment import check_environment
from lessons.core.source import show_source

try:
    __version__ = version("lessons")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

#: The chapter modules in the book's order. A chapter module may import the core and
#: the chapter modules listed before it, never one listed after it; tests/test_layout.py
#: enforces it by reading the source.
CHAPTER_MODULES = (
    "basics",  # 0. Getting started: softmax and cosine similarity
    "bigram",  # 0. Getting started: the smallest neural language model
    "word2vec",  # 1. word2vec: skip-gram and CBOW with negative sampling
    "ppmi",  # 1. word2vec: the count-based baseline
    "elmo",  # 2. ELMo: character-aware bidirectional language model
    "attention",  # 3. Attention: scores, masks, multi-head attention
    "seq2seq",  # 3. Attention: encoder-decoders with and without attention
    "transformer",  # 4. The Transformer: layers, training recipe, decoding, the LM
    "wordpiece",  # 5. BERT: the WordPiece tokenizer
    "bert",  # 5. BERT: the model on chapter 4's encoder, real MiniLM weights
    "reformer",  # 6. The Reformer: LSH attention, reversible layers, chunking
    "memory",  # 7. Big models, small GPUs: where the memory goes
)

__all__ = ["CHAPTER_MODULES", "__version__", "check_environment", "show_source"]
