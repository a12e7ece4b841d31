"""The text of an executed notebook, for the tests that check its prose against its
outputs (tests/test_prose_*.py)."""

from __future__ import annotations

import nbformat


def prose(notebook: nbformat.NotebookNode) -> str:
    """Every markdown cell, joined."""
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def outputs(notebook: nbformat.NotebookNode) -> str:
    """Every printed output and plain-text result, joined."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                texts.append(output["data"]["text/plain"])
    return "\n".join(texts)


def output_of(notebook: nbformat.NotebookNode, start: str) -> str:
    """The printed output of the one code cell whose source starts with ``start``."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(start)]
    assert len(cells) == 1, f"{len(cells)} code cells start with {start!r}"
    return "".join(o["text"] for o in cells[0].outputs if o.get("output_type") == "stream")
