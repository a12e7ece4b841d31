"""Real text that works offline, for every chapter of the book.

Everything here reads files that ship inside gensim's wheel (``gensim/test/test_data/``),
so the book runs on a laptop with no network:

* **Wikipedia** - a shortened dump of the English Wikipedia (about 200 pages, 106 of
  them real articles once redirects are skipped). Text by Wikipedia contributors,
  licensed CC BY-SA.
* **Lee** - the Lee background news corpus: 300 short Australian news stories, one per line
  (Lee, Pincombe and Welsh 2005).
* **Polarity** - 200 film-review sentences labelled positive or negative
  (Pang and Lee 2005; gensim's sample of the sentence polarity data set).
* **WordSim-353** - 353 word pairs with human similarity scores (Finkelstein et al. 2002).
* **SimLex-999** - 999 word pairs scored for similarity, not relatedness (Hill et al. 2015).
* **Google analogies** - 19,544 questions "a is to b as c is to ?" in 14 sections
  (Mikolov et al. 2013).

Tokenised corpora are lists of sentences, each a list of lower-case tokens. Parsing the
Wikipedia dump takes a few seconds, so the result is cached on disk under :func:`cache_dir`
and in memory. Larger corpora (text8) can be downloaded with :func:`fetch`, which checks a
SHA-256 hash before anything lands in the cache.

Used in: notebooks/00_getting_started.ipynb and later chapters.
"""

import bz2
import functools
import gzip
import hashlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import gensim
import platformdirs
from gensim.corpora.wikicorpus import extract_pages, filter_wiki
from tqdm.auto import tqdm

from lessons.core import checks

__all__ = [
    "BUNDLED_FILES",
    "REGISTRY",
    "CorpusSummary",
    "DownloadError",
    "RemoteFile",
    "SplitSummary",
    "WikiArticle",
    "analogies",
    "analogies_path",
    "bundled_files",
    "cache_dir",
    "describe",
    "fetch",
    "lee",
    "polarity",
    "register",
    "simlex999",
    "simlex999_path",
    "split_sentences",
    "tokenize",
    "wikipedia",
    "wikipedia_articles",
    "wordsim353",
    "wordsim353_path",
]

#: Part of the Wikipedia cache file's name. Change it whenever a rule in
#: :func:`tokenize`, :func:`split_sentences` or :func:`_article_sentences` changes, so
#: that old caches are ignored and the dump is parsed again.
WIKIPEDIA_CACHE_VERSION = "wiki-v1"

WIKIPEDIA_SPLITS = ("train", "validation", "all")
#: Every ``VALIDATION_EVERY``-th article (in dump order) goes to the validation split.
VALIDATION_EVERY = 10
#: Sentences with fewer tokens than this are dropped (headings, captions, stray fragments).
MIN_SENTENCE_TOKENS = 3

_TEST_DATA = Path(gensim.__file__).parent / "test" / "test_data"
#: The files this module reads, by short name; all ship inside gensim's wheel.
BUNDLED_FILES = {
    "wikipedia": "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    "lee": "lee_background.cor",
    "polarity": "pang_lee_polarity.cor",
    "wordsim353": "wordsim353.tsv",
    "simlex999": "simlex999.txt",
    "analogies": "questions-words.txt",
}

# A token is a run of letters or digits, optionally joined by inner apostrophes ("don't").
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# A sentence ends at . ! or ? followed by space and then a capital or digit (maybe quoted).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]*[A-Z0-9])")
# Lines that are not running prose once gensim has removed the markup.
_NON_PROSE_STARTS = ("=", "*", "#", ":", ";", "!", "{")


# --------------------------------------------------------------------------- cache


def bundled_files() -> dict[str, Path]:
    """Paths of the files that ship inside gensim's wheel, by short name (see `BUNDLED_FILES`)."""
    return {name: _TEST_DATA / filename for name, filename in BUNDLED_FILES.items()}


def cache_dir() -> Path:
    """Return the folder where downloads and parsed corpora are cached, creating it.

    It is ``$LESSONS_DATA_DIR`` when that environment variable is set and not empty,
    otherwise ``platformdirs.user_cache_dir("lessons")`` (for example
    ``~/.cache/lessons`` on Linux).

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    folder = Path(os.environ.get("LESSONS_DATA_DIR") or platformdirs.user_cache_dir("lessons"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file next to ``path``, then rename it into place."""
    descriptor, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(payload)
        os.replace(part, path)
    except BaseException:
        os.unlink(part)
        raise


# --------------------------------------------------------------------------- tokens


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lower-case tokens.

    Rules: lower-case everything, turn curly apostrophes into straight ones, and keep
    each run of letters or digits, allowing apostrophes inside a word (``"don't"``,
    ``"rand's"``). Everything else (punctuation, hyphens, markup symbols) separates tokens
    and is dropped, so ``"Anti-statism, e.g."`` gives ``["anti", "statism", "e", "g"]``.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences (strings, original case).

    Rule: a sentence ends at ``.``, ``!`` or ``?`` followed by white space and then a
    capital letter or digit, possibly after an opening quote or bracket. This is simple
    on purpose: abbreviations such as ``"Dr. Smith"`` are split too.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    return [s for s in _SENTENCE_BREAK.split(text.strip()) if s]


def _token_sentences(paragraphs: Iterable[str]) -> Iterator[list[str]]:
    """Yield the tokenised sentences of ``paragraphs`` that have enough tokens."""
    for paragraph in paragraphs:
        for sentence in split_sentences(paragraph):
            tokens = tokenize(sentence)
            if len(tokens) >= MIN_SENTENCE_TOKENS:
                yield tokens


# --------------------------------------------------------------------------- Wikipedia


@dataclass(frozen=True)
class WikiArticle:
    """One Wikipedia article: its title, page id and tokenised sentences."""

    title: str
    page_id: int
    sentences: tuple[tuple[str, ...], ...]


def _article_sentences(markup: str) -> list[tuple[str, ...]]:
    """Tokenised sentences of one article's wiki markup.

    gensim's ``filter_wiki`` removes templates, references, links and tables; then only
    prose lines are kept: lines starting with ``= * # : ; ! {`` (headings, lists,
    indented text, table rows) and lines still holding a ``|`` (image captions) are
    dropped. The rest is split with :func:`split_sentences` and :func:`tokenize`.
    """
    prose = (
        line
        for line in (raw.strip() for raw in filter_wiki(markup).splitlines())
        if line and not line.startswith(_NON_PROSE_STARTS) and "|" not in line
    )
    return [tuple(tokens) for tokens in _token_sentences(prose)]


def _parse_wikipedia() -> tuple[WikiArticle, ...]:
    """Read gensim's Wikipedia dump: main-namespace articles in dump order, skipping
    redirects, empty pages and pages without a single prose sentence."""
    articles = []
    with bz2.open(bundled_files()["wikipedia"], "rb") as dump:
        for title, markup, page_id in extract_pages(dump, filter_namespaces=("0",)):
            if not markup.strip() or markup.lstrip().lower().startswith("#redirect"):
                continue
            sentences = _article_sentences(markup)
            if sentences:
                articles.append(WikiArticle(title, int(page_id), tuple(sentences)))
    return tuple(articles)


def _wikipedia_cache_file() -> Path:
    """Where the parsed articles are cached; the name changes with our rules and with gensim
    (whose ``filter_wiki`` does the markup removal)."""
    return cache_dir() / f"wikipedia-{WIKIPEDIA_CACHE_VERSION}-gensim{gensim.__version__}.json.gz"


def _read_wikipedia_cache(path: Path) -> tuple[WikiArticle, ...] | None:
    """The articles stored at ``path``, or None if it is missing or unreadable."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, EOFError, ValueError):
        return None
    return tuple(
        WikiArticle(a["title"], a["page_id"], tuple(tuple(s) for s in a["sentences"]))
        for a in stored
    )


@functools.lru_cache(maxsize=1)
def _wikipedia_cached() -> tuple[WikiArticle, ...]:
    """All articles: from memory, else from the disk cache, else parsed and then cached."""
    path = _wikipedia_cache_file()
    articles = _read_wikipedia_cache(path)
    if articles is None:
        articles = _parse_wikipedia()
        stored = [
            {"title": a.title, "page_id": a.page_id, "sentences": a.sentences} for a in articles
        ]
        _atomic_write(path, gzip.compress(json.dumps(stored).encode("utf-8"), mtime=0))
    return articles


def wikipedia_articles(split: str = "all") -> list[WikiArticle]:
    """Return the Wikipedia articles of one split, in dump order.

    ``split`` is ``"train"``, ``"validation"`` or ``"all"``. The split is by article and
    deterministic: counting the kept articles from 0 in dump order, article ``i`` is in
    validation when ``i % VALIDATION_EVERY == VALIDATION_EVERY - 1`` (the 10th, 20th, ...
    article) and in train otherwise, so no article is on both sides.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    checks.one_of("split", split, WIKIPEDIA_SPLITS)
    articles = _wikipedia_cached()
    if split == "all":
        return list(articles)
    in_validation = split == "validation"
    return [
        a
        for i, a in enumerate(articles)
        if (i % VALIDATION_EVERY == VALIDATION_EVERY - 1) == in_validation
    ]


def wikipedia(split: str = "train") -> list[list[str]]:
    """Return the sentences of the Wikipedia sample: a list of lists of lower-case tokens.

    ``split`` is ``"train"`` (96 articles), ``"validation"`` (10 articles) or ``"all"``;
    see :func:`wikipedia_articles` for how articles are split and
    :func:`_article_sentences` for how markup is removed. Only main-namespace pages
    that are not redirects are used, and sentences shorter than ``MIN_SENTENCE_TOKENS``
    (3) tokens are dropped. The first call parses the dump (a few seconds) and
    caches the result under :func:`cache_dir`; later calls are fast. You get fresh lists,
    so changing them does not change the cache.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return [list(s) for article in wikipedia_articles(split) for s in article.sentences]


# --------------------------------------------------------------------------- Lee, polarity

LEE_UNITS = ("sentences", "documents")


@functools.lru_cache(maxsize=1)
def _lee_stories() -> tuple[str, ...]:
    return tuple(bundled_files()["lee"].read_text(encoding="utf-8").splitlines())


def lee(unit: str = "sentences") -> list[list[str]]:
    """Return the Lee background news corpus as lists of lower-case tokens.

    ``unit="documents"`` gives one token list per news story (300, one per line of
    ``lee_background.cor``); ``unit="sentences"`` splits each story into sentences with
    :func:`split_sentences` and keeps those with at least ``MIN_SENTENCE_TOKENS`` tokens.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    checks.one_of("unit", unit, LEE_UNITS)
    if unit == "documents":
        return [tokenize(story) for story in _lee_stories()]
    return list(_token_sentences(_lee_stories()))


_POLARITY_LABELS = {"__label__neg": 0, "__label__pos": 1}


def polarity() -> list[tuple[list[str], int]]:
    """Return 200 labelled film-review sentences as ``(tokens, label)`` pairs.

    ``label`` is 1 for positive and 0 for negative (100 of each; the file lists the
    negative ones first). Each line of ``pang_lee_polarity.cor`` is
    ``__label__pos`` or ``__label__neg`` followed by an already lower-cased sentence,
    which is tokenised with :func:`tokenize`. (The file is Windows-1252 encoded, not UTF-8:
    ``"clichés"`` comes out right.)

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    pairs = []
    text = bundled_files()["polarity"].read_text(encoding="cp1252")
    for line in text.splitlines():
        label, _, sentence = line.partition(" ")
        pairs.append((tokenize(sentence), _POLARITY_LABELS[label]))
    return pairs


# --------------------------------------------------------------------------- evaluation sets


def wordsim353_path() -> Path:
    """Path of WordSim-353 (tab-separated ``word1 word2 score``, ``#`` comments).

    Pass it to ``KeyedVectors.evaluate_word_pairs``.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return bundled_files()["wordsim353"]


def simlex999_path() -> Path:
    """Path of SimLex-999 (same format as WordSim-353).

    Pass it to ``KeyedVectors.evaluate_word_pairs``.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return bundled_files()["simlex999"]


def analogies_path() -> Path:
    """Path of the Google analogy questions (``: section`` lines, then ``a b c d`` lines).

    Pass it to ``KeyedVectors.evaluate_word_analogies``.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return bundled_files()["analogies"]


def _word_pairs(path: Path) -> list[tuple[str, str, float]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            first, second, score = line.split("\t")
            pairs.append((first.lower(), second.lower(), float(score)))
    return pairs


def wordsim353() -> list[tuple[str, str, float]]:
    """Return WordSim-353 as ``(word1, word2, score)`` triples, words lower-cased, score 0-10.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return _word_pairs(wordsim353_path())


def simlex999() -> list[tuple[str, str, float]]:
    """Return SimLex-999 as ``(word1, word2, score)`` triples, words lower-cased, score 0-10.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    return _word_pairs(simlex999_path())


def analogies() -> dict[str, list[tuple[str, str, str, str]]]:
    """Return the analogy questions by section: ``{section: [(a, b, c, d), ...]}``.

    Read "a is to b as c is to d"; words are lower-cased. Sections keep the file's order
    (``"capital-common-countries"`` first, then ``"capital-world"``, ...).

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    questions: list[tuple[str, str, str, str]] = []
    for line in analogies_path().read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            questions = sections.setdefault(line[1:].strip(), [])
        elif line.strip():
            a, b, c, d = line.lower().split()
            questions.append((a, b, c, d))
    return sections


# --------------------------------------------------------------------------- describe


@dataclass(frozen=True)
class SplitSummary:
    """Counts for one split of a corpus."""

    documents: int
    sentences: int
    tokens: int


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`describe` returns; ``str()`` gives a small readable table."""

    name: str
    description: str
    splits: dict[str, SplitSummary]
    vocabulary_size: int
    most_common: list[tuple[str, int]]
    example: str

    def __str__(self) -> str:
        lines = [
            f"{self.name}: {self.description}",
            f"  {'split':<12}{'documents':>10}{'sentences':>11}{'tokens':>11}",
        ]
        for split, s in self.splits.items():
            lines.append(f"  {split:<12}{s.documents:>10,}{s.sentences:>11,}{s.tokens:>11,}")
        lines.append(f"  vocabulary: {self.vocabulary_size:,} distinct tokens")
        lines.append("  most common: " + ", ".join(f"{w} ({n:,})" for w, n in self.most_common))
        lines.append(f"  example: {self.example}")
        return "\n".join(lines)


def _split_summary(documents: list[list[list[str]]]) -> SplitSummary:
    """Counts for documents given as lists of tokenised sentences."""
    return SplitSummary(
        documents=len(documents),
        sentences=sum(len(d) for d in documents),
        tokens=sum(len(s) for d in documents for s in d),
    )


def _wikipedia_documents(split: str) -> list[list[list[str]]]:
    return [[list(s) for s in a.sentences] for a in wikipedia_articles(split)]


def _lee_documents(split: str) -> list[list[list[str]]]:
    return [list(_token_sentences([story])) for story in _lee_stories()]


def _polarity_documents(split: str) -> list[list[list[str]]]:
    return [[tokens] for tokens, _ in polarity()]


_CORPORA = {
    "wikipedia": (
        "gensim's shortened English Wikipedia dump (CC BY-SA); a document is an article",
        WIKIPEDIA_SPLITS,
        _wikipedia_documents,
    ),
    "lee": (
        "Lee background news corpus; a document is a news story",
        ("all",),
        _lee_documents,
    ),
    "polarity": (
        "Pang & Lee film-review sentences, 100 positive and 100 negative, one per document",
        ("all",),
        _polarity_documents,
    ),
}


def describe(name: str = "wikipedia", *, top: int = 10) -> CorpusSummary:
    """Summarise a corpus: documents, sentences and tokens per split, vocabulary size,
    the ``top`` most common tokens and an example sentence.

    ``name`` is ``"wikipedia"``, ``"lee"`` or ``"polarity"``. ``print(describe())``
    shows it as a small table. Vocabulary and most common tokens are over all documents;
    the example is the first sentence of the first document.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    checks.one_of("name", name, _CORPORA)
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise TypeError(f"top must be a non-negative int; got {top!r}")
    description, splits, documents_of = _CORPORA[name]
    by_split = {split: documents_of(split) for split in splits}
    everything = by_split["all"]
    counts = Counter(token for d in everything for s in d for token in s)
    return CorpusSummary(
        name=name,
        description=description,
        splits={split: _split_summary(docs) for split, docs in by_split.items()},
        vocabulary_size=len(counts),
        most_common=counts.most_common(top),
        example=" ".join(everything[0][0]),
    )


# --------------------------------------------------------------------------- downloads


@dataclass(frozen=True)
class RemoteFile:
    """A file that :func:`fetch` can download: where from, its SHA-256, its cache name."""

    url: str
    sha256: str
    filename: str
    description: str


class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do. Nothing was left behind."""


#: Known downloads by name. Add your own with :func:`register`.
REGISTRY: dict[str, RemoteFile] = {}

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK_BYTES = 1 << 20


def register(name: str, url: str, sha256: str, filename: str, description: str) -> RemoteFile:
    """Add (or replace) a download in :data:`REGISTRY` and return its entry.

    ``sha256`` is the file's hex digest (64 characters, as ``sha256sum`` prints it) and
    ``filename`` the plain name it gets in :func:`cache_dir`.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    for argument, value in [
        ("name", name),
        ("url", url),
        ("sha256", sha256),
        ("filename", filename),
        ("description", description),
    ]:
        checks.nonempty_str(argument, value)
    if not _SHA256.fullmatch(sha256.lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters; got {sha256!r}")
    if Path(filename).name != filename or filename in {".", ".."}:
        raise ValueError(f"filename must be a plain file name, no folders; got {filename!r}")
    REGISTRY[name] = RemoteFile(url, sha256.lower(), filename, description)
    return REGISTRY[name]


register(
    "text8",
    url="http://mattmahoney.net/dc/text8.zip",
    sha256="a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232",
    filename="text8.zip",
    description="First 10^8 bytes of cleaned English Wikipedia (Mahoney 2006), zipped, 31 MB",
)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, *, url: str | None = None, progress: bool = True) -> Path:
    """Return the path of a registered download, downloading it first if needed.

    If ``cache_dir() / filename`` exists and its SHA-256 matches the registry, it is
    returned at once. Otherwise the file is streamed from ``url`` (default: the
    registry's) into a temporary file in the cache folder, with a progress bar unless
    ``progress=False``; its SHA-256 is checked and only then is it moved into place.
    Any failure (offline, interrupted transfer, wrong hash) deletes the temporary file
    and raises :class:`DownloadError` saying what to do.

    Used in: notebooks/00_getting_started.ipynb and later chapters.
    """
    checks.one_of("name", name, REGISTRY)
    if url is not None:
        checks.nonempty_str("url", url)
    entry = REGISTRY[name]
    target = cache_dir() / entry.filename
    if target.is_file() and _sha256_of(target) == entry.sha256:
        return target
    _download(url or entry.url, target, entry.sha256, progress)
    return target


def _download(url: str, target: Path, sha256: str, progress: bool) -> None:
    """Stream ``url`` to ``target`` atomically, checking its size and SHA-256."""
    by_hand = (
        f"You can download {url} by hand and save it as {target}, "
        "or set LESSONS_DATA_DIR to a folder that already holds it."
    )
    part = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    try:
        with part:
            digest, received, expected = _stream(url, part, target.name, progress, by_hand)
        if expected is not None and received < expected:
            raise DownloadError(
                f"The download of {url} was interrupted: got {received:,} of {expected:,} "
                f"bytes. Nothing was saved. Try again; if it keeps failing: {by_hand}"
            )
        if digest != sha256:
            raise DownloadError(
                f"The file downloaded from {url} has SHA-256 {digest}, expected {sha256}. "
                "It was corrupted in transit or changed on the server, so it was deleted. "
                f"Try again; if it keeps failing, check the source. {by_hand}"
            )
        os.replace(part.name, target)
    except BaseException:
        Path(part.name).unlink(missing_ok=True)
        raise


def _stream(
    url: str, out: IO[bytes], label: str, progress: bool, by_hand: str
) -> tuple[str, int, int | None]:
    """Copy ``url`` into the open file ``out``; return (sha256, bytes received, Content-Length)."""
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as error:
        raise DownloadError(
            f"{url} answered HTTP {error.code} {error.reason}. {by_hand}"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"Could not reach {url} ({reason}); are you offline? {by_hand}"
        ) from error
    digest = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with tqdm(
            total=expected, unit="B", unit_scale=True, desc=label, disable=not progress
        ) as bar:
            try:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as error:
                raise DownloadError(
                    f"The download of {url} was interrupted after {received:,} bytes ({error!r}). "
                    f"Nothing was saved. Try again; if it keeps failing: {by_hand}"
                ) from error
    return digest.hexdigest(), received, expected
