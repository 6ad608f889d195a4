"""A digit drawn on a canvas, prepared the way MNIST's digits were: 20 × 20 box, centre of mass.

LeCun, Cortes and Burges describe MNIST's preparation (https://yann.lecun.com/exdb/mnist/): each
digit's bounding box was size-normalised to fit a 20 × 20 box keeping its aspect ratio, which
anti-aliasing turned into grey levels, then the digit was placed in a 28 × 28 image so that its
centre of mass sat at the centre. ``prepare`` applies the same recipe to a drawing; Pillow does
the resampling and scipy the centre of mass. The placement is by whole pixels, as MNIST's digits
show: their centres of mass lie within half a pixel of row 14, column 14.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = [
    "BOX",
    "CANVAS_SIZE",
    "FIVE",
    "ONE",
    "PLACEMENTS",
    "SIDE",
    "STROKE_WIDTH",
    "TOO_SMALL",
    "draw_anywhere",
    "ink_box",
    "place_on_canvas",
    "prepare",
    "random_spots",
    "rasterize",
    "redraw",
    "shrink_canvas",
]

SIDE = 28  # an MNIST image is SIDE × SIDE pixels
BOX = 20  # the box its digit's bounding box is scaled to fit
CENTRE = 14  # the pixel its centre of mass is placed on (row and column)
CANVAS_SIZE = 280  # the drawing canvas, in pixels (ten MNIST pixels each way)
STROKE_WIDTH = 22  # the pen, in canvas pixels: about MNIST's stroke for a digit of canvas height
TOO_SMALL = CANVAS_SIZE // 10  # ink spanning fewer canvas pixels than this is a dot, not a digit
# Two drawings on the 280 × 280 canvas, pen strokes of (x, y) points: a 5 (its top bar, then its
# back and belly in one stroke) and a 1. The notebook, the tests and the README's picture use them.
FIVE = [
    [(195, 45), (105, 45)],
    [
        *[(105, 45), (95, 135), (110, 132), (128, 126), (146, 125), (164, 130), (180, 139)],
        *[(192, 152), (199, 169), (200, 186), (195, 202), (185, 217), (170, 228), (152, 234)],
        *[(134, 235), (116, 230), (100, 221), (88, 208)],
    ],
]
ONE = [[(140, 30), (140, 250)]]
# Where notebook 08 draws MNIST digits on the canvas to test the preparation: (top, left, side),
# or None for a random size and spot (``draw_anywhere``).
PLACEMENTS = {
    "filling the canvas": (0, 0, CANVAS_SIZE),
    "anywhere, 100 to 200 px": None,
    "small, in the middle": (90, 90, 100),
}


def rasterize(
    strokes: Sequence[Sequence[Sequence[float]]],
    size: int = CANVAS_SIZE,
    width: int = STROKE_WIDTH,
) -> np.ndarray:
    """A ``size`` × ``size`` image (uint8, ink 255) of pen strokes, each a list of (x, y) points.

    Lines are joined and ended with round caps, as the widget's canvas draws them; points off the
    canvas are clipped.
    """
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    radius = width / 2
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=width, joint="curve")
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(image)


def ink_box(image: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns of the image's ink (non-zero pixels), or None if it has none."""
    rows = np.flatnonzero(image.any(axis=1))
    columns = np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def prepare(image: np.ndarray) -> np.ndarray:
    """MNIST's preparation of a greyscale image (ink bright): a flat 784-pixel uint8 digit.

    The ink's bounding box is scaled to fit 20 × 20 keeping its aspect ratio, with area-averaging
    (anti-aliased) resampling, its strongest ink stretched to 255 as in most MNIST digits, and
    placed in 28 × 28 with its centre of mass on the centre pixel. A blank image raises ValueError.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image, got an array of shape {image.shape}")
    box = ink_box(image)
    if box is None:
        raise ValueError("the image is blank: there is no digit to prepare")
    ink = image[box].astype(np.float32)
    height, width = ink.shape
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(Image.fromarray(ink).resize(new_size, Image.Resampling.BOX))
    digit = digit * (255 / digit.max())
    row, column = ndimage.center_of_mass(digit)
    top, left = round(CENTRE - row), round(CENTRE - column)
    # Placed on a margin of BOX pixels each way, then cut to 28 × 28: ink pushed past an edge
    # by the centring is cut off, as it would have been in MNIST.
    placed = np.zeros((SIDE + 2 * BOX, SIDE + 2 * BOX), np.float32)
    placed[BOX + top : BOX + top + digit.shape[0], BOX + left : BOX + left + digit.shape[1]] = digit
    return np.rint(placed[BOX:-BOX, BOX:-BOX]).clip(0, 255).astype(np.uint8).ravel()


def place_on_canvas(
    digit: np.ndarray, top: int, left: int, side: int, size: int = CANVAS_SIZE, smooth: bool = True
) -> np.ndarray:
    """An MNIST digit blown up to ``side`` pixels at (``top``, ``left``) of a blank canvas.

    As if drawn large and anywhere on the widget's canvas; the part off the canvas is cut.
    ``smooth`` blows it up bilinearly (which blurs it, as any smooth enlargement does); without
    it each MNIST pixel becomes a block of equal canvas pixels (nearest neighbour), which for a
    ``side`` that is a multiple of 28 is exact. The canvas is a new ``size`` × ``size`` array of
    its own, not a view into a larger one (many canvases are made in turn).
    """
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    image = Image.fromarray(np.asarray(digit, np.uint8).reshape(SIDE, SIDE))
    large = np.asarray(image.resize((side, side), resample))
    canvas = np.zeros((size, size), np.uint8)
    rows = slice(max(top, 0), min(top + side, size))
    columns = slice(max(left, 0), min(left + side, size))
    if rows.start < rows.stop and columns.start < columns.stop:
        canvas[rows, columns] = large[
            rows.start - top : rows.stop - top, columns.start - left : columns.stop - left
        ]
    return canvas


def shrink_canvas(canvas: np.ndarray) -> np.ndarray:
    """The naive alternative to ``prepare``: the whole canvas scaled down to 28 × 28, flat."""
    image = Image.fromarray(np.asarray(canvas, np.uint8))
    return np.asarray(image.resize((SIDE, SIDE), Image.Resampling.BOX)).ravel()


def random_spots(
    count: int, rng: np.random.Generator, smallest: int = 100, largest: int = 200
) -> Iterator[tuple[int, int, int]]:
    """``count`` random (top, left, side): sides from ``smallest`` to ``largest``, random spots."""
    for _ in range(count):
        side = int(rng.integers(smallest, largest + 1))
        top, left = rng.integers(0, CANVAS_SIZE - side + 1, size=2)
        yield int(top), int(left), side


def draw_anywhere(
    digits: np.ndarray, rng: np.random.Generator, smallest: int = 100, largest: int = 200
) -> list[np.ndarray]:
    """Each digit blown up to a random side (``smallest`` to ``largest`` px) at a random spot."""
    spots = random_spots(len(digits), rng, smallest, largest)
    return [place_on_canvas(digit, *spot) for digit, spot in zip(digits, spots, strict=True)]


def redraw(
    digits: np.ndarray, placement: str, seed: int, smooth: bool = True
) -> dict[str, np.ndarray]:
    """The digits drawn on the canvas as ``PLACEMENTS[placement]`` says, then brought back.

    Returns both ways back to 28 × 28, by name: the whole canvas shrunk, and prepared. ``seed``
    draws the random sizes and spots of the placement that has them; ``smooth`` is
    ``place_on_canvas``'s. One canvas exists at a time: each is brought back both ways, then let go.
    """
    where = PLACEMENTS[placement]
    if where is None:
        spots = random_spots(len(digits), np.random.default_rng(seed))
    else:
        spots = itertools.repeat(where, len(digits))
    shrunk = np.empty((len(digits), SIDE * SIDE), np.uint8)
    prepared = np.empty((len(digits), SIDE * SIDE), np.uint8)
    for index, (digit, spot) in enumerate(zip(digits, spots, strict=True)):
        canvas = place_on_canvas(digit, *spot, smooth=smooth)
        shrunk[index] = shrink_canvas(canvas)
        prepared[index] = prepare(canvas)
    return {"canvas shrunk": shrunk, "prepared": prepared}
