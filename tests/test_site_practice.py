"""Browser tests of the practice page on the built site: quiz, exercises, explorer.

Needs the built site (``make book``; the folder is ``$LESSONS_SITE_DIR``, default
``_build/html``) and Debian's Chromium; see ``site_fixtures``. No kernel runs: what is
tested is what a reader of the static site gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PAGE = "notebooks/00_practice.html"


@pytest.fixture()
def on_practice_page(context, page_url, site_dir) -> Callable[[Callable[[Page], Any]], Any]:
    """``on_practice_page(check)`` opens the practice page and runs ``check(page)`` on it."""
    if not (site_dir / PAGE).is_file():
        pytest.fail(f"{PAGE} is not in the built site {site_dir}: is it in _toc.yml?")

    def run(check: Callable[[Page], Any]) -> Any:
        page = context.new_page()
        page.goto(page_url(PAGE), wait_until="load")
        return check(page)

    return run


def test_quiz_answers_show_their_feedback(on_practice_page) -> None:
    def check(practice: Page) -> None:
        question = practice.locator(".Quiz").filter(has_text="Adding the same constant c")
        expect(question).to_have_count(1)
        feedback = question.locator(".Feedback")

        question.locator("label.MCButton", has_text="Every probability grows").click()
        expect(feedback).to_contain_text("No: the probabilities always sum to 1")
        expect(feedback).to_have_class(re.compile(r"\bincorrect\b"))

        question.locator("label.MCButton", has_text="Nothing: softmax(x + c)").click()
        expect(feedback).to_contain_text("Right: every exponential is multiplied by exp(c)")
        expect(feedback).to_have_class(re.compile(r"\bcorrect\b"))

    on_practice_page(check)


def test_numeric_quiz_answer_shows_feedback(on_practice_page) -> None:
    def check(practice: Page) -> None:
        question = practice.locator(".Quiz").filter(has_text="Scores [2, 0] at temperature 1")
        field = question.locator("input.Input-text")
        field.click()
        field.press_sequentially("0.2")
        field.press("Enter")
        expect(question.locator(".Feedback")).to_contain_text("gets more than half")
        field.click()
        field.press_sequentially("0.881")
        field.press("Enter")
        expect(question.locator(".Feedback")).to_contain_text("Right: e² / (e² + e⁰)")

    on_practice_page(check)


def test_hints_and_solution_are_collapsed_until_clicked(on_practice_page) -> None:
    def check(practice: Page) -> None:
        task = practice.locator(".lessons-exercise").filter(has_text="Exercise basics.softmax")
        expect(task).to_have_count(1)
        expect(task.locator("summary")).to_have_text(
            ["Hint 1", "Hint 2", "Hint 3", "Hint 4", "Solution"]
        )
        solution = task.locator("details").filter(
            has=practice.locator("summary", has_text="Solution")
        )
        code = solution.locator("pre")
        expect(code).to_be_hidden()
        solution.locator("summary").click()
        expect(code).to_be_visible()
        expect(code).to_contain_text("shifted = x - x.amax(dim=dim, keepdim=True)")
        hint = task.locator("details").first
        expect(hint.locator("p")).to_be_hidden()
        hint.locator("summary").click()
        expect(hint.locator("p")).to_contain_text("keepdim=True")

    on_practice_page(check)


def test_checker_feedback_is_on_the_page(on_practice_page) -> None:
    def check(practice: Page) -> None:
        reports = practice.locator(".lessons-check")
        expect(reports.first).to_contain_text("basics.softmax: 2 of 7 cases failed.")
        expect(reports.first).to_contain_text("3 NaN value(s) where numbers were expected")
        expect(reports.filter(has_text="raised AttributeError")).to_have_count(1)
        expect(reports.filter(has_text="all 7 cases passed")).to_have_count(1)

    on_practice_page(check)


def test_explorer_default_view_is_an_image(on_practice_page) -> None:
    def check(practice: Page) -> None:
        image = practice.locator(".cell_output img").last
        expect(image).to_be_visible()
        width = image.evaluate("(img) => img.decode().then(() => img.naturalWidth)")
        assert width > 300

    on_practice_page(check)


def test_saved_widgets_are_drawn_without_a_kernel(on_practice_page) -> None:
    """The widget manager served by the site draws the notebook's saved widgets: the
    explorer's slider and dropdown with their saved values, and the exercise buttons
    with their icons."""

    def check(practice: Page) -> None:
        slider = practice.locator(".jupyter-widgets.widget-slider").first
        expect(slider).to_be_visible()
        expect(slider.locator(".widget-label")).to_have_text("temperature")
        expect(slider.locator(".widget-readout")).to_have_text("1.00")
        expect(practice.locator(".jupyter-widgets.widget-dropdown select").first).to_be_visible()

        button = practice.locator(".jupyter-widgets button", has_text="Show solution").first
        expect(button).to_be_visible()
        # The theme's Font Awesome script turns the widget's <i class="fa fa-eye"> into
        # an inline SVG; an icon name it does not know becomes a "missing" placeholder.
        icon = button.locator("svg.svg-inline--fa, i.fa")
        expect(icon).to_have_count(1)
        expect(icon.locator(".missing")).to_have_count(0)
        assert icon.evaluate("(icon) => icon.getBoundingClientRect().width") > 4

    on_practice_page(check)
