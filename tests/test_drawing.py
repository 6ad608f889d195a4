"""Stage 8: MNIST's preparation of a drawing, the answers of the drawing widget, bad input."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image
from scipy import ndimage

from mnist_study import digit_pad, drawing
from mnist_study.data import load_mnist


@pytest.fixture(scope="module")
def fixture_data(fixture_file: Path) -> tuple[np.ndarray, ...]:
    """The fixture's 2,000 training and 500 test images."""
    return load_mnist(fixture=fixture_file)


@pytest.fixture(scope="module")
def readers(
    fixture_data: tuple[np.ndarray, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[digit_pad.Readers]:
    """The widget's two models trained on the fixture, cached in a folder of their own."""
    X_train, _, y_train, _ = fixture_data
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_STUDY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield digit_pad.fit_readers(X_train, y_train)


def drawn_anywhere(digits: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Each digit blown up (bilinear) to 120-280 canvas pixels, at a random place on the canvas."""
    rng = np.random.default_rng(seed)
    canvases = []
    for digit in digits:
        side = int(rng.integers(120, drawing.CANVAS_SIZE + 1))
        top, left = rng.integers(0, drawing.CANVAS_SIZE - side + 1, size=2)
        canvases.append(drawing.place_on_canvas(digit, int(top), int(left), side))
    return canvases


def moved_by_one_pixel(digits: np.ndarray) -> list[np.ndarray]:
    """The digits moved one pixel up, down, left and right: four arrays like ``digits``."""
    images = digits.reshape(-1, 28, 28)
    return [
        np.roll(images, step, axis=axis).reshape(len(digits), -1)
        for step in (1, -1)
        for axis in (1, 2)
    ]


def test_a_digit_enlarged_exactly_anywhere_comes_back_within_one_grey_level(fixture_data) -> None:
    """Enlarged by whole pixels, nothing is resampled: preparation must undo it exactly.

    One grey level is allowed because preparation stretches the strongest ink to 255, as most
    MNIST digits have it; the others stop at 254 and come back one level stronger.
    """
    X_test = fixture_data[1]
    rng = np.random.default_rng(1)
    for digit in X_test:
        factor = int(rng.integers(4, 11))
        side = 28 * factor
        top, left = rng.integers(0, drawing.CANVAS_SIZE - side + 1, size=2)
        canvas = np.zeros((drawing.CANVAS_SIZE, drawing.CANVAS_SIZE), np.uint8)
        canvas[top : top + side, left : left + side] = np.kron(
            digit.reshape(28, 28), np.ones((factor, factor), np.uint8)
        )
        difference = np.abs(drawing.prepare(canvas).astype(int) - digit)
        assert difference.max() <= 1


def test_a_digit_drawn_large_anywhere_changes_less_than_a_one_pixel_shift(fixture_data) -> None:
    """Blown up smoothly and scaled back, a digit is resampled twice, which blurs its edges.

    No drawing can be placed more exactly than MNIST's centring does, to the whole pixel, so
    "nearly identical" means: closer to the original, pixel by pixel, than the original moved by
    one pixel is. The naive shrinking of the whole canvas must fail the same test.
    """
    X_test = fixture_data[1].astype(float)
    canvases = drawn_anywhere(fixture_data[1])
    prepared = np.array([drawing.prepare(canvas) for canvas in canvases])
    shrunk = np.array([drawing.shrink_canvas(canvas) for canvas in canvases])
    one_pixel = np.mean([np.abs(moved - X_test).mean() for moved in moved_by_one_pixel(X_test)])

    assert np.abs(prepared - X_test).mean() < one_pixel
    assert np.abs(shrunk - X_test).mean() > one_pixel


def test_the_models_read_drawn_digits_as_they_read_the_originals(fixture_data, readers) -> None:
    """The models must agree with their reading of the originals at least as often as they do
    for the originals moved by one pixel (the same bound as above, in the models' terms); the
    shrunk canvas must not, or the test could not fail."""
    X_test = fixture_data[1]
    canvases = drawn_anywhere(X_test, seed=2)
    prepared = np.array([drawing.prepare(canvas) for canvas in canvases])
    shrunk = np.array([drawing.shrink_canvas(canvas) for canvas in canvases])
    for model in (readers.detector, readers.classifier):
        original = model.predict(X_test)
        one_pixel = np.mean(
            [(model.predict(m) == original).mean() for m in moved_by_one_pixel(X_test)]
        )
        assert (model.predict(prepared) == original).mean() >= one_pixel
        assert (model.predict(shrunk) == original).mean() < one_pixel


@pytest.mark.parametrize(
    "strokes",
    [
        drawing.FIVE,
        drawing.ONE,
        [[(0, 0), (279, 0)]],
        [[(10, 270), (270, 10)], [(-50, 140), (400, 150)]],
    ],
    ids=["five", "one", "along the top border", "crossing and off the canvas"],
)
def test_a_prepared_drawing_is_shaped_as_mnist_digits_are(strokes) -> None:
    digit = drawing.prepare(drawing.rasterize(strokes)).reshape(28, 28)
    box = drawing.ink_box(digit)
    assert max(side.stop - side.start for side in box) == drawing.BOX
    assert digit.max() == 255
    assert np.allclose(ndimage.center_of_mass(digit.astype(float)), 14, atol=0.5)


def test_rasterize_draws_a_dot_as_a_disc_of_the_pen_width() -> None:
    canvas = drawing.rasterize([[(100, 100)]])
    rows, columns = drawing.ink_box(canvas)
    assert rows.stop - rows.start == columns.stop - columns.start == drawing.STROKE_WIDTH + 1


@pytest.mark.parametrize("image", [np.zeros((280, 280)), np.zeros(784)], ids=["blank", "flat"])
def test_prepare_refuses_what_is_not_a_drawing(image) -> None:
    with pytest.raises(ValueError, match=r"blank|2-D"):
        drawing.prepare(image)


def test_the_drawn_five_and_one_are_read_as_such(readers) -> None:
    """What the browser test draws: the detector says 5 for the 5 only, the forest reads both."""
    five = digit_pad.answer(readers, drawing.FIVE)
    one = digit_pad.answer(readers, drawing.ONE)
    assert (five["detector"], one["detector"]) == ("5", "not 5")
    assert five["message"].startswith("The forest reads a 5,")
    assert one["message"].startswith("The forest reads a 1,")
    assert np.argmax(five["probabilities"]) == 5
    assert sum(five["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert len(five["prepared"]) == 784


@pytest.mark.parametrize(
    ("strokes", "message"),
    [
        ([], "Draw a digit"),
        ([[(100, 100)]], "a dot, not a digit"),
        ([[(100, 100), (103, 102)], [(104, 99)]], "a dot, not a digit"),
        ([[(1, 2, 3)]], "could not be read"),
        ([["x", "y"]], "could not be read"),
        ([None], "could not be read"),
    ],
    ids=["empty", "one dot", "a scribble", "three numbers", "not numbers", "no points"],
)
def test_bad_drawings_get_a_sentence_and_no_reading(readers, strokes, message) -> None:
    shown = digit_pad.answer(readers, strokes)
    assert message in shown["message"]
    assert shown["detector"] == "" and shown["probabilities"] == [] and shown["prepared"] == []


def test_a_stroke_along_the_border_is_read_like_any_other(readers) -> None:
    shown = digit_pad.answer(readers, [[(0, 0), (279, 0)]])
    assert shown["detector"] in {"5", "not 5"}
    assert shown["message"].startswith("The forest reads a ")


def test_the_widget_answers_each_new_drawing_and_clears(readers) -> None:
    pad = digit_pad.DigitPad(readers)
    assert "Draw a digit" in pad.message
    pad.strokes = [list(map(list, stroke)) for stroke in drawing.FIVE]
    assert pad.detector == "5" and len(pad.prepared) == 784
    assert repr(pad) == "DigitPad(strokes=2, detector='5')"
    pad.strokes = []
    assert (pad.detector, pad.probabilities, pad.prepared) == ("", [], [])
    assert "export default" in pad._esm and ".digit-pad" in pad._css


def test_the_widget_shows_a_still_of_itself_where_widgets_do_not_run(readers) -> None:
    """The output GitHub shows: a PNG of the pad as it is, the same bytes for the same drawing."""
    pad = digit_pad.DigitPad(readers)
    data, _ = DisplayFormatter().format(pad)
    blank = base64.b64decode(data["image/png"])
    assert blank == pad.still()
    assert data["text/plain"] == f"DigitPad(strokes=0, detector=''). {digit_pad.HOW_TO_DRAW}"
    assert "application/vnd.jupyter.widget-view+json" in data
    with Image.open(io.BytesIO(blank)) as image:
        assert image.format == "PNG" and image.width > 2 * image.height
        assert "Software" not in image.info
    pad.strokes = [list(map(list, stroke)) for stroke in drawing.FIVE]
    five = pad.still()
    assert five != blank
    assert digit_pad.DigitPad(readers, strokes=pad.strokes).still() == five
    pad.strokes = [[(1, 2, 3)]]  # unreadable: a message, and the canvas left blank
    assert "could not be read" in pad.message and pad.still() not in {blank, five}
    pad.strokes = []
    assert pad.still() == blank


def test_widgets_are_numbered_not_random(readers) -> None:
    first, second = digit_pad.DigitPad(readers), digit_pad.DigitPad(readers)
    number = int(first.model_id.rsplit("-", 1)[1])
    assert second.model_id == f"mnist-study-digit-pad-{number + 1}"


def test_redraw_places_each_digit_as_said_and_brings_it_back_both_ways(fixture_data) -> None:
    digits = fixture_data[1][:20]
    for placement, where in drawing.PLACEMENTS.items():
        redrawn = drawing.redraw(digits, placement, seed=0)
        assert list(redrawn) == ["canvas shrunk", "prepared"]
        for back in redrawn.values():
            assert back.shape == digits.shape and back.dtype == np.uint8
        again = drawing.redraw(digits, placement, seed=1)
        # only the random placement depends on the seed
        same = all(np.array_equal(again[way], redrawn[way]) for way in redrawn)
        assert same == (where is not None)
    # a digit filling the canvas, shrunk back, is the digit itself but for the resampling's blur
    filling = drawing.redraw(digits, "filling the canvas", seed=0)["canvas shrunk"]
    assert np.abs(filling.astype(int) - digits).mean() < 10
    with pytest.raises(KeyError):
        drawing.redraw(digits, "upside down", seed=0)


def padded_reference(digit: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """The digit blown up and placed on a canvas padded by ``side`` each way, then cut: the
    straightforward way to place it partly off the canvas."""
    large = np.asarray(
        Image.fromarray(digit.reshape(28, 28)).resize((side, side), Image.Resampling.BILINEAR)
    )
    size = drawing.CANVAS_SIZE
    padded = np.zeros((size + 2 * side, size + 2 * side), np.uint8)
    padded[side + top : 2 * side + top, side + left : 2 * side + left] = large
    return padded[side:-side, side:-side]


@pytest.mark.parametrize(
    ("top", "left", "side"),
    [(0, 0, 280), (90, 90, 100), (-40, 200, 150), (250, -120, 130), (-30, -30, 340), (279, 0, 60)],
)
def test_a_placed_digit_is_a_canvas_of_its_own_not_a_view_of_a_larger_one(
    fixture_data, top, left, side
) -> None:
    """Each canvas holds only its own pixels: 10,000 of them once kept 840 × 840 arrays alive."""
    digit = fixture_data[1][3]
    canvas = drawing.place_on_canvas(digit, top, left, side)
    assert canvas.shape == (drawing.CANVAS_SIZE, drawing.CANVAS_SIZE) and canvas.base is None
    np.testing.assert_array_equal(canvas, padded_reference(digit, top, left, side))


def test_redraw_brings_each_canvas_back_as_drawing_them_one_by_one_does(fixture_data) -> None:
    digits = fixture_data[1][:30]
    redrawn = drawing.redraw(digits, "anywhere, 100 to 200 px", seed=3)
    canvases = drawing.draw_anywhere(digits, np.random.default_rng(3))
    np.testing.assert_array_equal(
        redrawn["canvas shrunk"], [drawing.shrink_canvas(c) for c in canvases]
    )
    np.testing.assert_array_equal(redrawn["prepared"], [drawing.prepare(c) for c in canvases])


def test_without_smoothing_a_digit_filling_the_canvas_comes_back_as_it_was(fixture_data) -> None:
    digits = fixture_data[1][:50]
    redrawn = drawing.redraw(digits, "filling the canvas", seed=0, smooth=False)
    np.testing.assert_array_equal(redrawn["canvas shrunk"], digits)
    assert np.abs(redrawn["prepared"].astype(int) - digits).max() <= 1
    smooth = drawing.redraw(digits, "filling the canvas", seed=0)
    assert (smooth["prepared"] > 0).sum() > (redrawn["prepared"] > 0).sum(), "the blur spreads ink"
