"""Interactive figures: sliders and dropdowns that redraw a matplotlib figure.

    interactive_figure(draw, temperature=(0.1, 5.0, 0.1, 1.0), scores=["2, 1, 0", "1, 1, 1"])

calls ``draw(ax, temperature=..., scores=...)`` and shows the controls above the
figure. The figure is displayed as a plain PNG image, so that an executed notebook on
the static site shows the default view (widgets cannot run there); in a live kernel
the image is updated in place whenever a control changes.

Controls are ipywidgets widgets, or abbreviations:
``(min, max, step)`` or ``(min, max, step, default)`` gives a slider (integer when all
numbers are integers), a list of options gives a dropdown.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lessons.core.source import in_kernel

__all__ = ["Explorer", "interactive_figure", "make_control"]


def make_control(name: str, spec: Any) -> Any:
    """An ipywidgets control from a widget or an abbreviation (see the module docstring)."""
    import ipywidgets as widgets

    if isinstance(spec, widgets.Widget):
        return spec
    style = {"description_width": "initial"}
    if isinstance(spec, list) and spec:
        return widgets.Dropdown(options=spec, value=spec[0], description=name, style=style)
    if isinstance(spec, tuple) and len(spec) in (3, 4):
        numbers = [x for x in spec if isinstance(x, int | float) and not isinstance(x, bool)]
        if len(numbers) == len(spec):
            low, high, step = spec[:3]
            value = spec[3] if len(spec) == 4 else low
            if not low <= value <= high or not step > 0:
                raise ValueError(f"{name}: need min <= default <= max and step > 0, got {spec}")
            slider = (
                widgets.IntSlider if all(isinstance(x, int) for x in spec) else widgets.FloatSlider
            )
            return slider(
                min=low,
                max=high,
                step=step,
                value=value,
                description=name,
                continuous_update=False,
                style=style,
            )
    raise TypeError(
        f"{name}: expected a widget, (min, max, step[, default]) or a list of options; got {spec!r}"
    )


class Explorer:
    """A figure drawn by ``draw(ax, **values)`` and the controls that set the values.

    ``png`` holds the current image and ``draws`` counts the redraws, so that the
    explorer can be tested without a browser: set a control's value, and both change.
    """

    def __init__(
        self,
        draw: Callable[..., None],
        controls: dict[str, Any],
        figsize: tuple[float, float] = (6.0, 3.5),
    ) -> None:
        import ipywidgets as widgets

        self.draw = draw
        self.figsize = figsize
        self.controls = {name: make_control(name, spec) for name, spec in controls.items()}
        self.widget = widgets.VBox(list(self.controls.values()))
        self.draws = 0
        self.png = b""
        self._display: Any = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"<Explorer {getattr(self.draw, '__name__', 'figure')}({values})>"

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        """Draw the figure for the current values; update the displayed image if shown."""
        figure = Figure(figsize=self.figsize, layout="constrained")
        self.draw(figure.add_subplot(), **self.values)
        buffer = io.BytesIO()
        FigureCanvasAgg(figure).print_png(buffer)
        self.png = buffer.getvalue()
        self.draws += 1
        if self._display is not None:
            self._display.update(self._image())

    def show(self) -> None:
        """Display the controls, then the figure as an image that later redraws replace."""
        from IPython.display import display

        display(self.widget)
        self._display = display(self._image(), display_id=True)

    def _image(self) -> Any:
        from IPython.display import Image

        return Image(data=self.png, format="png")

    def _on_change(self, _change: dict[str, Any]) -> None:
        self.redraw()


def interactive_figure(
    draw: Callable[..., None], *, figsize: tuple[float, float] = (6.0, 3.5), **controls: Any
) -> Explorer:
    """Create an `Explorer` and show it when running in Jupyter or Colab."""
    explorer = Explorer(draw, controls, figsize=figsize)
    if in_kernel():
        explorer.show()
    return explorer
