"""Stage 8: MNIST's preparation of a drawing, the answers of the drawing widget, bad input."""

import base64
import io
from collections.abc import Iterator

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image
from scipy import ndimage

from mnist_study import digit_pad, drawing, features

BORDER = [[(0, 0), (279, 0)]]


@pytest.fixture(scope="module")
def readers(fixture_arrays, tmp_path_factory) -> Iterator[digit_pad.Readers]:
    """The widget's two models trained on the fixture, cached in a folder of their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_STUDY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        labels = fixture_arrays["y_train"].astype(str)  # as load_mnist gives them
        yield digit_pad.fit_readers(fixture_arrays["X_train"], labels)


def test_a_digit_drawn_large_anywhere_and_prepared_is_read_as_the_original(fixture_arrays, readers):
    """Drawn large and prepared: nearer the original than a one-pixel shift; shrunk is not."""
    X_test = fixture_arrays["X_test"]
    redrawn = drawing.redraw(X_test, "anywhere, 100 to 200 px", seed=0)
    moved = [features.shift_images(X_test, dx, dy) for dx, dy in features.ONE_PIXEL_SHIFTS]
    ways = [redrawn["prepared"], redrawn["canvas shrunk"], *moved]
    canvases = drawing.draw_anywhere(X_test, np.random.default_rng(0))  # as redraw draws them
    np.testing.assert_array_equal(ways[0], [drawing.prepare(canvas) for canvas in canvases])
    far = [np.abs(x.astype(float) - X_test).mean() for x in ways]
    assert far[0] < np.mean(far[2:]) < far[1]
    for model in (readers.detector, readers.classifier):
        agree = [(model.predict(x) == model.predict(X_test)).mean() for x in ways]
        assert agree[0] >= np.mean(agree[2:]) > agree[1]


@pytest.mark.parametrize(
    "strokes",
    [drawing.FIVE, drawing.ONE, BORDER, [[(10, 270), (270, 10)], [(-50, 140), (400, 150)]]],
    ids=["five", "one", "along the top border", "crossing and off the canvas"],
)
def test_a_prepared_drawing_is_shaped_as_mnist_digits_are(strokes) -> None:
    """Its ink box 20 pixels on its longer side, its centre of mass at the middle, its ink 255."""
    digit = drawing.prepare(drawing.rasterize(strokes)).reshape(28, 28)
    assert max(side.stop - side.start for side in drawing.ink_box(digit)) == drawing.BOX
    assert digit.max() == 255
    assert np.allclose(ndimage.center_of_mass(digit.astype(float)), 14, atol=0.5)


@pytest.mark.parametrize(
    ("strokes", "message"),
    [
        ([], "Draw a digit"),
        ([[(100, 100)]], "a dot, not a digit"),
        ([[(100, 100), (103, 102)], [(104, 99)]], "a dot, not a digit"),
        ([[(1, 2, 3)]], "could not be read"),
        ([None], "could not be read"),
    ],
    ids=["empty", "one dot", "a scribble", "three numbers", "no points"],
)
def test_bad_drawings_get_a_sentence_and_no_reading(readers, strokes, message) -> None:
    shown = digit_pad.answer(readers, strokes)
    assert message in shown["message"]
    assert shown["detector"] == "" and shown["probabilities"] == [] and shown["prepared"] == []


def test_the_widget_reads_the_five_and_one_and_shows_a_still_of_itself(readers) -> None:
    """The detector says 5 for the 5 only, the forest reads both; the still PNG is the pad's."""
    five, one, border = (digit_pad.answer(readers, s) for s in (drawing.FIVE, drawing.ONE, BORDER))
    assert (five["detector"], one["detector"]) == ("5", "not 5")
    assert five["message"].startswith("The forest reads a 5,")
    assert one["message"].startswith("The forest reads a 1,")
    assert np.argmax(five["probabilities"]) == 5 and len(five["prepared"]) == 784
    assert sum(five["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert border["message"].startswith("The forest reads a ")
    pad, second = digit_pad.DigitPad(readers), digit_pad.DigitPad(readers)
    assert second.model_id == f"mnist-study-digit-pad-{int(pad.model_id.split('-')[-1]) + 1}"
    assert "export default" in pad._esm and ".digit-pad" in pad._css
    data, _ = DisplayFormatter().format(pad)
    blank = base64.b64decode(data["image/png"])
    assert blank == pad.still() and "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == f"DigitPad(strokes=0, detector=''). {digit_pad.HOW_TO_DRAW}"
    with Image.open(io.BytesIO(blank)) as image:
        assert image.format == "PNG" and "Software" not in image.info
    pad.strokes = [list(map(list, stroke)) for stroke in drawing.FIVE]
    assert repr(pad) == "DigitPad(strokes=2, detector='5')" and len(pad.prepared) == 784
    five = pad.still()
    assert five != blank and digit_pad.DigitPad(readers, strokes=pad.strokes).still() == five
    pad.strokes = [[(1, 2, 3)]]  # unreadable: a message, and the canvas left blank
    assert "could not be read" in pad.message and pad.still() not in {blank, five}
    pad.strokes = []
    assert (pad.detector, pad.probabilities, pad.prepared, pad.still()) == ("", [], [], blank)


def test_redraw_places_each_digit_as_said_and_brings_it_back_both_ways(fixture_arrays) -> None:
    """Each placement as said, seeded only when random; enlarged by whole pixels, back within 1."""
    rng = np.random.default_rng(1)
    for digit in fixture_arrays["X_test"]:
        side = 28 * int(rng.integers(4, 11))
        top, left = rng.integers(0, drawing.CANVAS_SIZE - side + 1, size=2)
        canvas = drawing.place_on_canvas(digit, top, left, side, smooth=False)
        assert np.abs(drawing.prepare(canvas).astype(int) - digit).max() <= 1
    digits = fixture_arrays["X_test"][:30]
    for placement, where in drawing.PLACEMENTS.items():
        redrawn = drawing.redraw(digits, placement, seed=0)
        shapes = {way: (back.shape, back.dtype) for way, back in redrawn.items()}
        assert shapes == dict.fromkeys(["canvas shrunk", "prepared"], (digits.shape, np.uint8))
        again = drawing.redraw(digits, placement, seed=1)
        assert all(np.array_equal(again[way], redrawn[way]) for way in redrawn) == bool(where)
    sharp = drawing.redraw(digits, "filling the canvas", seed=0, smooth=False)
    smooth = drawing.redraw(digits, "filling the canvas", seed=0)
    np.testing.assert_array_equal(sharp["canvas shrunk"], digits)
    assert np.abs(smooth["canvas shrunk"].astype(int) - digits).mean() < 10
    assert (smooth["prepared"] > 0).sum() > (sharp["prepared"] > 0).sum(), "the blur spreads ink"
    for image, message in (np.zeros((280, 280)), "blank"), (digits[0], "2-D"):
        with pytest.raises(ValueError, match=message):
            drawing.prepare(image)
