"""Tests for lessons.core.data: offline corpora, evaluation sets, the cache and downloads.

The numbers below were measured once with gensim 4.4.0 (the version pinned in
constraints.txt); the tokenising rules are deterministic, so they are exact.
"""

import hashlib
import http.server
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from gensim.models import KeyedVectors

from lessons.core import data

FIRST_SENTENCE = (
    "anarchism is a political philosophy that advocates self governed societies "
    "based on voluntary institutions"
)


@pytest.fixture(scope="module")
def articles() -> list[data.WikiArticle]:
    return data.wikipedia_articles("all")


@pytest.fixture
def fresh_memory_cache() -> Iterator[None]:
    """Empty the in-memory Wikipedia cache before and after a test that fiddles with it."""
    data._wikipedia_cached.cache_clear()
    yield
    data._wikipedia_cached.cache_clear()


# --------------------------------------------------------------------------- cache_dir


def test_cache_dir_comes_from_the_environment_and_is_created(tmp_path, monkeypatch):
    wanted = tmp_path / "a" / "b"
    monkeypatch.setenv("LESSONS_DATA_DIR", str(wanted))
    assert data.cache_dir() == wanted
    assert wanted.is_dir()


def test_cache_dir_falls_back_to_platformdirs(tmp_path, monkeypatch):
    asked = []
    monkeypatch.delenv("LESSONS_DATA_DIR")
    monkeypatch.setattr(
        data.platformdirs, "user_cache_dir", lambda app: asked.append(app) or str(tmp_path / app)
    )
    assert data.cache_dir() == tmp_path / "lessons"
    assert asked == ["lessons"]


def test_conftest_keeps_the_cache_out_of_home():
    assert not data.cache_dir().is_relative_to(Path.home() / ".cache")


# --------------------------------------------------------------------------- tokenising


def test_tokenize_keeps_inner_apostrophes_and_drops_punctuation():
    assert data.tokenize("Rand’s ''Atlas'' [[Shrugged]], anti-statism: don't {{x|y}} 1539!") == [
        "rand's",
        "atlas",
        "shrugged",
        "anti",
        "statism",
        "don't",
        "x",
        "y",
        "1539",
    ]


def test_split_sentences_needs_a_capital_or_digit_after_the_full_stop():
    text = 'It rained. "Then" it stopped! Was it 3 p.m. or so? 1969 was a year.'
    assert data.split_sentences(text) == [
        "It rained.",
        '"Then" it stopped!',
        "Was it 3 p.m. or so?",
        "1969 was a year.",
    ]


# --------------------------------------------------------------------------- Wikipedia


def test_wikipedia_article_counts_and_split(articles):
    train = data.wikipedia_articles("train")
    validation = data.wikipedia_articles("validation")
    assert (len(articles), len(train), len(validation)) == (106, 96, 10)
    assert validation == articles[9::10]
    ids = [a.page_id for a in articles]
    assert len(set(ids)) == len(ids)
    train_ids = {a.page_id for a in train}
    validation_ids = {a.page_id for a in validation}
    assert not train_ids & validation_ids
    assert train_ids | validation_ids == set(ids)
    assert [a.title for a in validation[:3]] == [
        "Academy Award for Best Production Design",
        "List of Atlas Shrugged characters",
        "Andre Agassi",
    ]


def test_wikipedia_skips_redirects(articles):
    titles = {a.title for a in articles}
    assert "AccessibleComputing" not in titles  # the dump's first page, a redirect
    assert articles[0].title == "Anarchism"


def test_wikipedia_sentence_and_token_counts():
    counts = {}
    for split in data.WIKIPEDIA_SPLITS:
        sentences = data.wikipedia(split)
        counts[split] = (len(sentences), sum(map(len, sentences)))
    assert counts == {
        "train": (18_204, 384_881),
        "validation": (2_244, 34_324),
        "all": (20_448, 419_205),
    }


def test_wikipedia_tokens_are_clean():
    sentences = data.wikipedia("all")
    assert " ".join(sentences[0]) == FIRST_SENTENCE
    assert min(map(len, sentences)) == data.MIN_SENTENCE_TOKENS
    tokens = Counter(t for s in sentences for t in s)
    assert len(tokens) == 32_079
    for token in tokens:
        assert token == token.lower(), token
        assert not any(mark in token for mark in ("[[", "{{", "<ref", "|", "=", "<", "]")), token
    # Markup words gensim's filter leaves behind are rare, not everywhere.
    assert tokens["ref"] == tokens["nbsp"] == tokens["http"] == 0
    assert tokens["thumb"] <= 5


def test_wikipedia_returns_fresh_lists():
    first = data.wikipedia("validation")
    first[0].append("changed")
    first.clear()
    again = data.wikipedia("validation")
    assert len(again) == 2_244
    assert "changed" not in again[0]


def test_wikipedia_cache_is_written_once_and_reread(monkeypatch, fresh_memory_cache):
    data.wikipedia_articles()  # parsed (or read) and cached by the session's first call
    path = data._wikipedia_cache_file()
    written = path.stat().st_mtime_ns
    expected = data.wikipedia("train")

    def must_not_parse():
        raise AssertionError("the dump was parsed again")

    monkeypatch.setattr(data, "_parse_wikipedia", must_not_parse)
    data._wikipedia_cached.cache_clear()
    assert data.wikipedia("train") == expected  # from the disk cache
    assert path.stat().st_mtime_ns == written
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []

    monkeypatch.setattr(data, "_read_wikipedia_cache", must_not_parse)
    assert data.wikipedia("train") == expected  # from memory


def test_a_broken_or_outdated_cache_is_rebuilt(tmp_path, monkeypatch, fresh_memory_cache):
    monkeypatch.setenv("LESSONS_DATA_DIR", str(tmp_path))
    fake = (data.WikiArticle("Toy", 1, (("a", "toy", "sentence"),)),)
    parses = []
    monkeypatch.setattr(data, "_parse_wikipedia", lambda: parses.append(1) or fake)

    data._wikipedia_cache_file().write_bytes(b"not gzip at all")
    assert data.wikipedia("all") == [["a", "toy", "sentence"]]
    assert parses == [1]
    assert data._read_wikipedia_cache(data._wikipedia_cache_file()) == fake

    monkeypatch.setattr(data, "WIKIPEDIA_CACHE_VERSION", "wiki-test-rules")
    data._wikipedia_cached.cache_clear()
    data.wikipedia("all")
    assert parses == [1, 1]
    assert len(list(tmp_path.iterdir())) == 2  # one cache per rule version, no temp files


# --------------------------------------------------------------------------- Lee, polarity


def test_lee_documents_match_the_file_lines():
    lines = data._TEST_DATA.joinpath("lee_background.cor").read_text().splitlines()
    documents = data.lee("documents")
    assert len(documents) == len(lines) == 300
    assert documents[0][:5] == ["hundreds", "of", "people", "have", "been"]
    assert all(t == t.lower() for d in documents for t in d)


def test_lee_sentences():
    sentences = data.lee("sentences")
    assert len(sentences) == 2_614
    assert sum(map(len, sentences)) == 60_533
    assert sentences[0][-3:] == ["of", "hill", "top"]


def test_polarity_labels_and_text():
    pairs = data.polarity()
    assert len(pairs) == 200
    assert Counter(label for _, label in pairs) == {0: 100, 1: 100}
    assert pairs[0] == (["simplistic", "silly", "and", "tedious"], 0)
    assert pairs[-1][1] == 1
    assert any("clichés" in tokens for tokens, _ in pairs)  # Windows-1252 decoded right


# --------------------------------------------------------------------------- evaluation sets


def test_evaluation_paths_exist():
    for path in (data.wordsim353_path(), data.simlex999_path(), data.analogies_path()):
        assert path.is_file()


def test_word_pair_loaders():
    wordsim = data.wordsim353()
    assert len(wordsim) == 353
    assert wordsim[0] == ("love", "sex", 6.77)
    assert ("tiger", "tiger", 10.0) in wordsim
    simlex = data.simlex999()
    assert len(simlex) == 999
    assert simlex[0] == ("old", "new", 1.58)
    assert all(0 <= score <= 10 for _, _, score in wordsim + simlex)


def _random_vectors(words: set[str]) -> KeyedVectors:
    vectors = KeyedVectors(vector_size=8)
    rng = np.random.default_rng(0)
    vectors.add_vectors(sorted(words), rng.normal(size=(len(words), 8)).astype(np.float32))
    return vectors


@pytest.mark.parametrize(
    "loader,path", [("wordsim353", "wordsim353_path"), ("simlex999", "simlex999_path")]
)
def test_word_pairs_agree_with_gensim(loader, path):
    pairs = getattr(data, loader)()
    vectors = _random_vectors({w for a, b, _ in pairs for w in (a, b)})
    pearson, spearman, oov = vectors.evaluate_word_pairs(getattr(data, path)())
    ours = [vectors.similarity(a, b) for a, b, _ in pairs]
    human = [score for _, _, score in pairs]
    assert oov == 0
    assert pearson.statistic == pytest.approx(scipy.stats.pearsonr(human, ours).statistic)
    assert spearman.statistic == pytest.approx(scipy.stats.spearmanr(human, ours).statistic)


def test_analogy_sections_agree_with_gensim():
    sections = data.analogies()
    assert len(sections) == 14
    assert sum(map(len, sections.values())) == 19_544
    assert sections["capital-common-countries"][0] == ("athens", "greece", "baghdad", "iraq")
    # gensim reads the same file; with an empty vocabulary and dummy4unknown it files every
    # question, upper-cased, under "incorrect" without trying to answer it.
    _, read_by_gensim = KeyedVectors(vector_size=8).evaluate_word_analogies(
        data.analogies_path(), dummy4unknown=True
    )
    assert read_by_gensim.pop()["section"] == "Total accuracy"
    assert {
        s["section"]: [tuple(w.lower() for w in q) for q in s["incorrect"]] for s in read_by_gensim
    } == sections


# --------------------------------------------------------------------------- describe


def test_describe_wikipedia():
    summary = data.describe()
    assert summary.splits == {
        "train": data.SplitSummary(96, 18_204, 384_881),
        "validation": data.SplitSummary(10, 2_244, 34_324),
        "all": data.SplitSummary(106, 20_448, 419_205),
    }
    assert summary.vocabulary_size == 32_079
    assert summary.most_common[:3] == [("the", 31_255), ("of", 16_541), ("and", 13_063)]
    assert len(summary.most_common) == 10
    assert summary.example == FIRST_SENTENCE
    text = str(summary)
    for expected in ("wikipedia", "CC BY-SA", "18,204", "419,205", "32,079", "the (31,255)"):
        assert expected in text


def test_describe_lee_and_polarity():
    lee = data.describe("lee", top=3)
    assert lee.splits == {"all": data.SplitSummary(300, 2_614, 60_533)}
    assert lee.vocabulary_size == 7_381
    assert [w for w, _ in lee.most_common] == ["the", "to", "of"]
    polarity = data.describe("polarity")
    assert polarity.splits == {"all": data.SplitSummary(200, 200, 3_821)}
    assert polarity.example == "simplistic silly and tedious"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call,error,words",
    [
        (
            lambda: data.wikipedia("test"),
            ValueError,
            ["split", "'train'", "'validation'", "'test'"],
        ),
        (lambda: data.wikipedia(0), TypeError, ["split", "'train'", "int 0"]),
        (lambda: data.wikipedia_articles(None), TypeError, ["split", "got None"]),
        (lambda: data.lee("words"), ValueError, ["unit", "'sentences'", "'documents'", "'words'"]),
        (lambda: data.describe("text9"), ValueError, ["name", "'wikipedia'", "'lee'", "'text9'"]),
        (lambda: data.describe(top=-1), TypeError, ["top", "-1"]),
        (lambda: data.tokenize(b"bytes"), TypeError, ["text", "bytes"]),
        (lambda: data.fetch("nope"), ValueError, ["name", "'text8'", "'nope'"]),
        (lambda: data.fetch("text8", url=5), TypeError, ["url", "5"]),
        (lambda: data.register("x", "http://h/x", "abc", "x", "d"), ValueError, ["sha256", "64"]),
        (lambda: data.register("x", "http://h/x", "0" * 64, "a/x", "d"), ValueError, ["filename"]),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


# --------------------------------------------------------------------------- downloads


def test_registry_holds_text8():
    entry = data.REGISTRY["text8"]
    assert entry.url == "http://mattmahoney.net/dc/text8.zip"
    assert entry.filename == "text8.zip"
    assert data._SHA256.fullmatch(entry.sha256)


@dataclass
class FileServer:
    """A local HTTP server: ``routes[path] = (body, declared Content-Length)``."""

    base: str
    routes: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)


@pytest.fixture
def server(monkeypatch) -> Iterator[FileServer]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    served = FileServer(base="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.requests[self.path] += 1
            if self.path not in served.routes:
                self.send_error(404)
                return
            body, length = served.routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)  # then the connection closes, short or not

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    served.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def toy_registry(tmp_path, monkeypatch) -> bytes:
    """An empty download folder and a registry whose only entry is 'toy' (toy.bin)."""
    monkeypatch.setenv("LESSONS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "REGISTRY", {})
    return os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk


def _register_toy(server: FileServer, body: bytes) -> Path:
    data.register(
        "toy", server.base + "/toy.bin", hashlib.sha256(body).hexdigest(), "toy.bin", "toy"
    )
    return data.cache_dir() / "toy.bin"


def test_fetch_downloads_once_and_then_uses_the_cache(server, toy_registry):
    body = toy_registry
    server.routes["/toy.bin"] = (body, len(body))
    target = _register_toy(server, body)
    assert data.fetch("toy") == target
    assert target.read_bytes() == body
    assert data.fetch("toy", progress=False) == target
    assert server.requests == {"/toy.bin": 1}
    assert os.listdir(target.parent) == ["toy.bin"]

    target.write_bytes(b"damaged on disk")  # a bad cached copy is replaced
    assert data.fetch("toy", progress=False).read_bytes() == body
    assert server.requests == {"/toy.bin": 2}


def test_fetch_can_use_another_url(server, toy_registry):
    body = toy_registry
    server.routes["/mirror/toy.bin"] = (body, len(body))
    target = _register_toy(server, body)
    assert data.fetch("toy", url=server.base + "/mirror/toy.bin", progress=False) == target
    assert server.requests == {"/mirror/toy.bin": 1}


def test_fetch_rejects_a_corrupted_file(server, toy_registry):
    body = toy_registry
    corrupted = body[:-1] + b"!"
    server.routes["/toy.bin"] = (corrupted, len(corrupted))
    target = _register_toy(server, body)
    with pytest.raises(data.DownloadError) as raised:
        data.fetch("toy", progress=False)
    message = str(raised.value)
    assert hashlib.sha256(body).hexdigest() in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert str(target) in message
    assert os.listdir(target.parent) == []


def test_fetch_cleans_up_after_an_interrupted_transfer(server, toy_registry):
    body = toy_registry
    server.routes["/toy.bin"] = (body[:1000], len(body))
    target = _register_toy(server, body)
    with pytest.raises(data.DownloadError, match=f"interrupted.*1,000 of {len(body):,} bytes"):
        data.fetch("toy", progress=False)
    assert os.listdir(target.parent) == []


def test_fetch_reports_http_errors(server, toy_registry):
    target = _register_toy(server, toy_registry)  # no route: the server answers 404
    with pytest.raises(data.DownloadError, match="HTTP 404"):
        data.fetch("toy", progress=False)
    assert os.listdir(target.parent) == []


def test_fetch_offline_says_what_to_do(toy_registry):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/toy.bin"
    data.register("toy", url, hashlib.sha256(b"").hexdigest(), "toy.bin", "toy")
    with pytest.raises(data.DownloadError) as raised:
        data.fetch("toy", progress=False)
    message = str(raised.value)
    for expected in ("offline", url, str(data.cache_dir() / "toy.bin"), "LESSONS_DATA_DIR"):
        assert expected in message
    assert os.listdir(data.cache_dir()) == []


def test_bundled_files_all_exist_and_match_the_path_functions():
    files = data.bundled_files()
    assert set(files) == set(data.BUNDLED_FILES)
    assert all(path.is_file() for path in files.values())
    assert files["wordsim353"] == data.wordsim353_path()
    assert files["simlex999"] == data.simlex999_path()
    assert files["analogies"] == data.analogies_path()
