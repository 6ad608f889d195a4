"""Stage 8's drawing widget in JupyterLab, driven with the mouse, on the fixture's models (which
``tests/test_drawing.py`` checks offline read the same strokes so)."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from mnist_study.drawing import FIVE, ONE
from tests.browser.driver import draw, wait_for_reading

pytestmark = pytest.mark.browser

NOTEBOOK = "notebooks/08_draw_a_digit.ipynb"


def shown(page: Page) -> dict[str, object]:
    """What the widget shows: the detector's line, the message, the bars' percentages, the image."""
    return page.evaluate(
        """() => {
            const pad = document.querySelector(".digit-pad");
            const text = (selector) => pad.querySelector(selector).textContent;
            const preview = pad.querySelector(".digit-pad-preview");
            const pixels = preview.getContext("2d").getImageData(0, 0, 28, 28).data;
            return {
                detector: text(".digit-pad-detector"),
                message: text(".digit-pad-message"),
                values: [...pad.querySelectorAll(".digit-pad-value")].map((v) => v.textContent),
                inked: pixels.filter((value, i) => i % 4 === 0 && value > 0).length,
            };
        }"""
    )


def clear(page: Page) -> None:
    """Press the widget's Clear button and wait until it asks for a digit again."""
    page.locator(".digit-pad-clear").click()
    wait_for_reading(page, "Draw a digit")


def test_drawing_with_the_mouse(page: Page, run_all: Callable[[str], None]) -> None:
    """A 5, a 1, then drawings an exception in the kernel would leave unanswered."""
    run_all(NOTEBOOK)
    wait_for_reading(page, "Draw a digit")
    assert shown(page)["detector"] == "" and shown(page)["inked"] == 0
    draw(page, FIVE)
    wait_for_reading(page, "reads a 5")
    five = shown(page)
    assert five["detector"] == "Is it a 5? Yes: 5"
    assert len(five["values"]) == 10 and all(value.endswith("%") for value in five["values"])
    assert max(five["values"], key=lambda value: int(value[:-1])) == five["values"][5]
    assert five["inked"] > 0
    clear(page)
    assert shown(page)["inked"] == 0 and shown(page)["values"] == [""] * 10
    draw(page, ONE)
    wait_for_reading(page, "reads a 1")
    assert shown(page)["detector"] == "Is it a 5? No: not 5"
    for strokes, reading, detector in (
        ([[(150, 150)]], "a dot, not a digit", ""),  # one dot
        ([[(2, 2), (278, 2)]], "The forest reads a ", "Is it a 5? "),  # along the border
    ):
        clear(page)
        draw(page, strokes)
        wait_for_reading(page, reading)
        assert shown(page)["detector"].startswith(detector)
        assert bool(shown(page)["detector"]) == bool(detector)
