"""Notebook hygiene: every committed notebook is executed, clean and complete.

The site shows the notebooks' committed outputs (jupyter-book never executes them),
so each must have been run top to bottom (``make execute``) without errors, carry
its widgets' state, stay small, and open with a title and a Colab badge above a
Colab-only set-up cell that nbval skips and the site folds away.

nbval reads its instructions from cell *tags* (``nbval-skip``,
``nbval-check-output``, ``nbval-ignore-output``), never from ``# NBVAL_...``
comments, which readers would see on the site and on Colab.

Each check is a function that returns a list of problems; the parametrized tests
apply them to the real notebooks, and the ``test_check_*`` tests show that each
one reports a broken notebook built in memory.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_BYTES = 3 * 1024 * 1024
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
COLAB_BADGE = re.compile(r"https://colab\.research\.google\.com/github/\S+?\.ipynb")
COLAB_GUARD = re.compile(r"""["']google\.colab["']\s+in\s+sys\.modules""")
# A linked badge image, ``[![alt text](image)](colab url)``: the alt text is what a
# reader sees (and a screen reader says) when the image does not load.
COLAB_BADGE_LINK = re.compile(
    r"\[!\[(?P<alt>[^\]]*)\]\([^)\s]+\)\]\(" + COLAB_BADGE.pattern + r"\)"
)
COLAB_BADGE_ALT = "Open this notebook in Google Colab"
# nbval's comment markers (``# NBVAL_SKIP``); the tag for ``NBVAL_X_Y`` is ``nbval-x-y``.
NBVAL_COMMENT = re.compile(r"^\s*#+\s*(?P<marker>NBVAL_\w+)\s*$", flags=re.MULTILINE)
# The tags on the Colab set-up cell: nbval skips it; the site folds it behind a toggle
# (a learner can still open it to see how the package is installed).
COLAB_SETUP_TAGS = ("nbval-skip", "hide-cell")


def _source(cell: NotebookNode) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _code_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# --------------------------------------------------------------------------- checks
def check_execution_order(nb: NotebookNode) -> list[str]:
    """Code cells with source ran once each, top to bottom, in one fresh kernel:
    execution counts 1, 2, 3, ... (nbclient skips empty cells)."""
    problems = []
    expected = 1
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not _source(cell).strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"cell {index}: not executed")
        elif count != expected:
            problems.append(f"cell {index}: execution_count {count}, expected {expected}")
        expected += 1
    return problems


def check_no_errors(nb: NotebookNode) -> list[str]:
    """No error outputs and no traceback printed to a stream."""
    problems = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {index}: error output {output.get('ename')}")
            elif output.output_type == "stream":
                text = output.text if isinstance(output.text, str) else "".join(output.text)
                if "Traceback (most recent call last)" in text:
                    problems.append(f"cell {index}: traceback in {output.name}")
    return problems


def check_kernelspec(nb: NotebookNode) -> list[str]:
    name = nb.metadata.get("kernelspec", {}).get("name")
    return [] if name == "python3" else [f"kernelspec name {name!r}, expected 'python3'"]


def check_widget_state(nb: NotebookNode) -> list[str]:
    """Every displayed widget's model is in the saved widget state, so the site can
    render it."""
    shown: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                shown.setdefault(view.get("model_id", ""), index)
    if not shown:
        return []
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state")
    if not state:
        return ["widgets are displayed but no widget state is saved (execute with widget state)"]
    return [
        f"cell {index}: widget model {model_id!r} is not in the saved widget state"
        for model_id, index in shown.items()
        if model_id not in state
    ]


def check_size(size_bytes: int) -> list[str]:
    if size_bytes < MAX_BYTES:
        return []
    return [f"{size_bytes / 1024 / 1024:.1f} MB, over the {MAX_BYTES // 1024 // 1024} MB limit"]


def check_opening(nb: NotebookNode) -> list[str]:
    """The first cell is markdown with a level-1 title and a Colab badge whose
    alt text reads as a link when the badge image does not load."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return ["the first cell is not a markdown cell"]
    text = _source(nb.cells[0])
    problems = []
    if not re.search(r"^# \S", text, flags=re.MULTILINE):
        problems.append("the first cell has no level-1 title ('# ...')")
    if not COLAB_BADGE.search(text):
        problems.append("the first cell has no Colab badge")
    else:
        for link in COLAB_BADGE_LINK.finditer(text):
            if link["alt"] != COLAB_BADGE_ALT:
                problems.append(
                    f"the Colab badge's alt text is {link['alt']!r}, expected {COLAB_BADGE_ALT!r}"
                )
    return problems


def check_colab_setup(nb: NotebookNode) -> list[str]:
    """A set-up cell guarded by ``"google.colab" in sys.modules``, tagged so that
    nbval skips it and the site folds it away."""
    guarded = [cell for cell in _code_cells(nb) if COLAB_GUARD.search(_source(cell))]
    if not guarded:
        return ['no set-up cell guarded by `"google.colab" in sys.modules`']
    if any(set(COLAB_SETUP_TAGS) <= set(_tags(cell)) for cell in guarded):
        return []
    tags = _tags(guarded[0])
    return [
        f"the Colab set-up cell has no `{tag}` tag" for tag in COLAB_SETUP_TAGS if tag not in tags
    ]


def check_no_nbval_comments(nb: NotebookNode) -> list[str]:
    """nbval's instructions are cell tags, not ``# NBVAL_...`` comments in the source."""
    return [
        f"cell {index}: `# {match['marker']}` comment, use the "
        f"`{match['marker'].lower().replace('_', '-')}` tag instead"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for match in NBVAL_COMMENT.finditer(_source(cell))
    ]


NOTEBOOK_CHECKS = [
    check_execution_order,
    check_no_errors,
    check_kernelspec,
    check_widget_state,
    check_opening,
    check_colab_setup,
    check_no_nbval_comments,
]


def toc_notebooks() -> set[str]:
    """The notebooks the TOC lists, as paths relative to the repository."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = {toc["root"]}

    def walk(items: list[dict]) -> None:
        for item in items:
            if "file" in item:
                files.add(item["file"])
            walk(item.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    # An entry is a notebook when it says so, when its .ipynb exists, or when it
    # lives in notebooks/ (so that a missing notebook still counts as one).
    notebooks = set()
    for file in files:
        stem = file.removesuffix(".ipynb")
        if file.endswith(".ipynb") or (ROOT / f"{stem}.ipynb").is_file():
            notebooks.add(f"{stem}.ipynb")
        elif file.startswith("notebooks/") and not file.endswith(".md"):
            notebooks.add(f"{stem}.ipynb")
    return notebooks


# ------------------------------------------------------------- the real notebooks
def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks in notebooks/"


def test_toc_notebooks_exist() -> None:
    missing = sorted(f for f in toc_notebooks() if not (ROOT / f).is_file())
    assert not missing, f"the TOC lists notebooks that do not exist: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_toc(path: Path) -> None:
    assert path.relative_to(ROOT).as_posix() in toc_notebooks(), f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
@pytest.mark.parametrize("check", NOTEBOOK_CHECKS, ids=lambda f: f.__name__)
def test_notebook(path: Path, check) -> None:
    nb = nbformat.read(path, as_version=4)
    problems = check(nb)
    assert not problems, f"{path.name}: " + "; ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_size(path: Path) -> None:
    assert not check_size(path.stat().st_size), f"{path.name}: {check_size(path.stat().st_size)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_nbformat(path: Path) -> None:
    nbformat.validate(nbformat.read(path, as_version=4))


# --------------------------------------------- the checks catch broken notebooks
def good_notebook() -> NotebookNode:
    """A small notebook that passes every check."""
    badge = "https://colab.research.google.com/github/o/r/blob/main/notebooks/x.ipynb"
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    setup = 'import sys\nif "google.colab" in sys.modules:\n    pass'
    widget = new_output(
        "display_data",
        data={
            "text/plain": "IntSlider(value=3)",
            WIDGET_VIEW: {"model_id": "abc", "version_major": 2},
        },
    )
    nb.cells = [
        new_markdown_cell(f"# A title\n\n[![{COLAB_BADGE_ALT}](badge.svg)]({badge})"),
        new_code_cell(setup, execution_count=1, metadata={"tags": list(COLAB_SETUP_TAGS)}),
        new_code_cell("x = 1", execution_count=2, metadata={"tags": ["nbval-check-output"]}),
        new_code_cell("", execution_count=None),
        new_code_cell("slider", execution_count=3, outputs=[widget]),
    ]
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {"abc": {}}, "version_major": 2}}
    return nb


def test_good_notebook_passes_every_check() -> None:
    nb = good_notebook()
    nbformat.validate(nb)
    assert [problem for check in NOTEBOOK_CHECKS for problem in check(nb)] == []


def test_check_execution_order_reports_out_of_order_and_unexecuted_cells() -> None:
    nb = good_notebook()
    nb.cells[2].execution_count = 5
    assert check_execution_order(nb) == ["cell 2: execution_count 5, expected 2"]
    nb = good_notebook()
    nb.cells[2].execution_count = None
    assert check_execution_order(nb) == ["cell 2: not executed"]


def test_check_no_errors_reports_errors_and_tracebacks() -> None:
    nb = good_notebook()
    nb.cells[2].outputs = [
        new_output("error", ename="ValueError", evalue="bad", traceback=[]),
        new_output("stream", name="stderr", text="Traceback (most recent call last):\n  ..."),
    ]
    assert check_no_errors(nb) == [
        "cell 2: error output ValueError",
        "cell 2: traceback in stderr",
    ]


def test_check_kernelspec_reports_another_kernel() -> None:
    nb = good_notebook()
    nb.metadata.kernelspec["name"] = "venv-book"
    assert check_kernelspec(nb) == ["kernelspec name 'venv-book', expected 'python3'"]


def test_check_widget_state_reports_missing_state() -> None:
    nb = good_notebook()
    del nb.metadata["widgets"]
    assert len(check_widget_state(nb)) == 1
    nb = good_notebook()
    nb.metadata.widgets[WIDGET_STATE]["state"] = {"other": {}}
    assert check_widget_state(nb) == ["cell 4: widget model 'abc' is not in the saved widget state"]


def test_check_size_reports_big_notebooks() -> None:
    assert check_size(MAX_BYTES - 1) == []
    assert check_size(MAX_BYTES) != []


def test_check_opening_reports_missing_title_and_badge() -> None:
    nb = good_notebook()
    nb.cells[0].source = "## Not a title\n\nNo badge."
    assert check_opening(nb) == [
        "the first cell has no level-1 title ('# ...')",
        "the first cell has no Colab badge",
    ]
    nb.cells.insert(0, new_code_cell("1"))
    assert check_opening(nb) == ["the first cell is not a markdown cell"]


def test_check_opening_reports_a_badge_without_a_readable_alt_text() -> None:
    nb = good_notebook()
    nb.cells[0].source = nb.cells[0].source.replace(COLAB_BADGE_ALT, "Open In Colab")
    assert check_opening(nb) == [
        f"the Colab badge's alt text is 'Open In Colab', expected {COLAB_BADGE_ALT!r}"
    ]


def test_check_colab_setup_reports_missing_guard_or_tags() -> None:
    nb = good_notebook()
    nb.cells[1].metadata["tags"] = []
    assert check_colab_setup(nb) == [
        "the Colab set-up cell has no `nbval-skip` tag",
        "the Colab set-up cell has no `hide-cell` tag",
    ]
    # The comment marker no longer counts: nbval would honour it, but readers see it.
    nb.cells[1].source = "# NBVAL_SKIP\n" + nb.cells[1].source
    nb.cells[1].metadata["tags"] = ["hide-cell"]
    assert check_colab_setup(nb) == ["the Colab set-up cell has no `nbval-skip` tag"]
    nb = good_notebook()
    nb.cells[1].source = "import sys"
    assert check_colab_setup(nb) == ['no set-up cell guarded by `"google.colab" in sys.modules`']


def test_check_no_nbval_comments_reports_comment_markers() -> None:
    nb = good_notebook()
    nb.cells[1].source = "# NBVAL_SKIP\n" + nb.cells[1].source
    nb.cells[2].source = "x = 1\n  #NBVAL_IGNORE_OUTPUT  \nprint(x)"
    assert check_no_nbval_comments(nb) == [
        "cell 1: `# NBVAL_SKIP` comment, use the `nbval-skip` tag instead",
        "cell 2: `# NBVAL_IGNORE_OUTPUT` comment, use the `nbval-ignore-output` tag instead",
    ]
    # Prose about the markers, in markdown or inside a longer comment, is fine.
    nb = good_notebook()
    nb.cells[0].source += "\n\n# NBVAL_SKIP"
    nb.cells[2].source = "x = 1  # NBVAL_SKIP would skip this cell"
    assert check_no_nbval_comments(nb) == []


def test_tags_mean_to_nbval_what_the_comment_markers_meant() -> None:
    """Each ``nbval-*`` tag this book uses is the one nbval 0.11 reads for the marker
    (also in --nbval-lax mode, where only tagged cells have their output checked)."""
    from nbval.plugin import comment_markers, find_comment_markers, find_metadata_tags

    for marker in ("NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_IGNORE_OUTPUT"):
        tag = marker.lower().replace("_", "-")
        assert marker in comment_markers
        from_tag = dict(find_metadata_tags({"tags": [tag]}))
        assert from_tag and from_tag == dict(find_comment_markers(f"# {marker}\nx = 1")), tag
    assert dict(find_metadata_tags({"tags": ["nbval-skip"]})) == {"skip": True}
    assert dict(find_metadata_tags({"tags": ["nbval-check-output"]})) == {"check": True}
    assert dict(find_metadata_tags({"tags": ["nbval-ignore-output"]})) == {"check": False}


# ---------------------------------------------------------- the nbval sanitize file
SANITIZE_FILE = ROOT / "tests" / "nbval_sanitize.cfg"


def sanitize(text: str) -> str:
    """Apply the sanitize file the way nbval does: each (regex, replace) in order."""
    from nbval.plugin import get_sanitize_patterns

    for regex, replace in dict(get_sanitize_patterns(SANITIZE_FILE.read_text())).items():
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_file_parses_and_compiles() -> None:
    from nbval.plugin import get_sanitize_patterns

    text = SANITIZE_FILE.read_text()
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == text.count("\nregex: "), "a regex line without its replace line"
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("<Foo object at 0x7f3a2b1c9d00>", "<Foo object at 0x7f00deadbeef>"),
        ("Wall time: 1.23 s", "Wall time: 845 ms"),
        (
            "CPU times: user 2.1 s, sys: 12 ms, total: 2.11 s",
            "CPU times: user 1 s, sys: 9 ms, total: 1 s",
        ),
        ("epoch 3 took 00:01", "epoch 3 took 00:12"),
        (
            "train:  45%|████▌     | 45/100 [00:01<00:02, 30.12it/s, loss=0.123]",
            "train:  45%|████▌     | 45/100 [00:03<00:05, 12.00it/s, loss=0.123]",
        ),
        ("at 2.5 s/it", "at 3.75 s/it"),
        (
            "/work/main/.venv/lib/python3.11/site-packages/torch/nn/modules/module.py",
            "/usr/local/lib/python3.12/dist-packages/torch/nn/modules/module.py",
        ),
        ("saved to /tmp/tmpa1b2c3d4/model.pt", "saved to /tmp/tmpzz99yy00/model.pt"),
        ("/home/alice/book/notebooks/data.txt", "/content/book/notebooks/data.txt"),
    ],
)
def test_sanitize_file_equates_varying_output(a: str, b: str) -> None:
    assert sanitize(a) == sanitize(b), (sanitize(a), sanitize(b))


def test_sanitize_file_keeps_real_numbers() -> None:
    assert (
        sanitize("loss 0.123, accuracy 97.5%, 12 samples")
        == "loss 0.123, accuracy 97.5%, 12 samples"
    )


def test_the_notebook_stage_waits_for_outputs_on_a_busy_machine() -> None:
    """`make nbval` loads tests/nbval_patience.py: nbval's 5-second wait becomes longer."""
    import importlib

    import nbval.plugin

    sys.path.insert(0, str(ROOT / "tests"))
    try:
        patience = importlib.import_module("nbval_patience")
    finally:
        sys.path.remove(str(ROOT / "tests"))
    assert nbval.plugin.IPyNbCell.__init__ is patience._patient_init
    assert patience.OUTPUT_TIMEOUT_S >= 60
    assert "-p nbval_patience" in (ROOT / "Makefile").read_text(encoding="utf-8")
