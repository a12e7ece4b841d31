"""show_source: the package's own code, with where it lives."""

import inspect

import pytest

import lessons
from lessons.core import plot, train
from lessons.core.source import SourceView, get_source, show_source


def test_get_source_of_a_function_names_file_and_lines():
    view = get_source(plot.smooth)
    lines, first = inspect.getsourcelines(plot.smooth)
    assert view.name == "lessons.core.plot.smooth"
    assert view.path == "lessons/core/plot.py"
    assert (view.first_line, view.last_line) == (first, first + len(lines) - 1)
    assert view.code.startswith("def smooth(")
    assert view.code == "".join(lines).rstrip("\n")


def test_get_source_of_a_method_is_dedented():
    view = get_source(train.History.metric)
    assert view.code.startswith("def metric(self")
    assert view.name == "lessons.core.train.History.metric"


def test_get_source_of_a_class_and_a_module():
    assert get_source(train.History).code.startswith("@dataclass")
    module = get_source(plot)
    assert module.first_line == 1 and module.path == "lessons/core/plot.py"


def test_html_is_highlighted_and_escaped():
    html = get_source(plot.smooth)._repr_html_()
    assert "lessons/core/plot.py, lines" in html
    assert "<span" in html  # pygments highlighting
    assert "def" in html and "smooth" in html


def test_plain_text_outside_a_notebook(capsys):
    show_source(plot.smooth)
    out = capsys.readouterr().out
    assert out.startswith("# lessons.core.plot.smooth — lessons/core/plot.py, lines ")
    assert "def smooth(" in out


def test_exported_at_top_level():
    assert lessons.show_source is show_source


@pytest.mark.parametrize("obj", [42, "text", len, print])
def test_objects_without_source_get_a_clear_error(obj):
    with pytest.raises(TypeError, match="show_source\\(obj\\)"):
        get_source(obj)


def test_view_is_immutable_and_prints_like_str():
    view = SourceView("f", "def f():\n    pass", "x.py", 3, 4)
    assert repr(view) == str(view) == "# f — x.py, lines 3–4\ndef f():\n    pass"
    with pytest.raises(AttributeError):
        view.code = "changed"
