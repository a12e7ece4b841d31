"""Headless tests of lessons.core.explorer: set control values, the figure is redrawn."""

from __future__ import annotations

import pytest

from lessons.core import explorer
from lessons.figures import basics

pytestmark = [
    pytest.mark.widgets7,
    # ipywidgets 7.7.1 (Colab's) still opens comms through ipykernel's deprecated class.
    pytest.mark.filterwarnings("ignore:The `ipykernel.comm.Comm` class:DeprecationWarning"),
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_controls_from_abbreviations() -> None:
    import ipywidgets as widgets

    slider = explorer.make_control("t", (0.1, 5.0, 0.1, 1.0))
    assert isinstance(slider, widgets.FloatSlider)
    assert (slider.min, slider.max, slider.step, slider.value) == (0.1, 5.0, 0.1, 1.0)
    integer = explorer.make_control("n", (1, 9, 2))
    assert isinstance(integer, widgets.IntSlider) and integer.value == 1
    dropdown = explorer.make_control("scores", ["1, 2", "3, 4"])
    assert isinstance(dropdown, widgets.Dropdown) and dropdown.value == "1, 2"
    given = widgets.Checkbox(value=True)
    assert explorer.make_control("flag", given) is given


@pytest.mark.parametrize(
    ("spec", "error"),
    [((0, 1), TypeError), ("abc", TypeError), ([], TypeError), ((0, 1, 0.1, 5), ValueError)],
)
def test_bad_controls_are_refused(spec, error) -> None:
    with pytest.raises(error, match="x: "):
        explorer.make_control("x", spec)


def test_changing_a_control_redraws_the_figure() -> None:
    calls = []

    def draw(ax, temperature, scores):
        calls.append((temperature, scores))
        basics.draw_softmax_temperature(ax, temperature, scores)

    view = explorer.Explorer(
        draw, {"temperature": (0.1, 5.0, 0.1, 1.0), "scores": ["2, 1, 0", "1, 1, 1"]}
    )
    assert view.png.startswith(PNG_SIGNATURE) and view.draws == 1
    first = view.png
    view.controls["temperature"].value = 3.0
    assert view.draws == 2 and view.png != first
    view.controls["scores"].value = "1, 1, 1"
    assert view.draws == 3
    assert calls == [(1.0, "2, 1, 0"), (3.0, "2, 1, 0"), (3.0, "1, 1, 1")]
    assert view.values == {"temperature": 3.0, "scores": "1, 1, 1"}
    assert repr(view) == "<Explorer draw(temperature=3.0, scores='1, 1, 1')>"


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list = []

    def update(self, obj) -> None:
        self.updates.append(obj)


def test_shown_figure_is_an_image_updated_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.display import Image

    shown, handle = [], FakeHandle()

    def display(obj, display_id=None):
        shown.append((obj, display_id))
        return handle if display_id else None

    monkeypatch.setattr("IPython.display.display", display)
    monkeypatch.setattr("lessons.core.explorer.in_kernel", lambda: True)
    view = explorer.interactive_figure(
        basics.draw_softmax_temperature, temperature=(0.1, 5, 0.1, 1)
    )
    (controls, _), (image, display_id) = shown
    assert controls is view.widget and display_id is True
    assert isinstance(image, Image) and image.data == view.png
    view.controls["temperature"].value = 0.5
    assert len(handle.updates) == 1 and handle.updates[0].data == view.png != image.data


def test_outside_jupyter_nothing_is_displayed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: pytest.fail("displayed"))
    view = explorer.interactive_figure(
        basics.draw_softmax_temperature, temperature=(0.1, 5, 0.1, 1)
    )
    assert view.png.startswith(PNG_SIGNATURE)


def test_softmax_temperature_figure_shows_the_probabilities() -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    basics.draw_softmax_temperature(ax, temperature=1.0, scores="2, 0")
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([0.8808, 0.1192], abs=1e-4)
    assert ax.get_title() == "softmax(scores / T), T = 1.00"
