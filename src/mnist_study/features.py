"""Features of the digit images for stage 6: shifts, deskewing, stroke directions.

The models that use them are scikit-learn's own, written out in the notebook (for example
``make_pipeline(FunctionTransformer(direction_features), PCA(100), SVC())``). Everything here is
deterministic. The disk cache (``cache.py``) is keyed on this module's source
too (its functions run inside cached fits unseen by joblib's key), so editing this file
recomputes, never reuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

__all__ = [
    "ONE_PIXEL_SHIFTS",
    "TWO_PIXEL_SHIFTS",
    "augment_with_shifts",
    "deskew",
    "direction_features",
    "float_pixels",
    "image_moments",
    "on_float_pixels",
    "shift_images",
    "unit_pixels",
]

SIDE = 28
# The study's proposal: one pixel left, right, down and up, as (dx, dy) in the book's order.
ONE_PIXEL_SHIFTS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, 1), (0, -1))
TWO_PIXEL_SHIFTS: tuple[tuple[int, int], ...] = ((-2, 0), (2, 0), (0, 2), (0, -2))


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Move flattened 28×28 images ``dx`` pixels right and ``dy`` down, filling with zeros."""
    squares = np.asarray(images).reshape(-1, SIDE, SIDE)
    shifted = np.zeros_like(squares)
    rows_to = slice(max(dy, 0), SIDE + min(dy, 0))
    rows_from = slice(max(-dy, 0), SIDE + min(-dy, 0))
    cols_to = slice(max(dx, 0), SIDE + min(dx, 0))
    cols_from = slice(max(-dx, 0), SIDE + min(-dx, 0))
    shifted[:, rows_to, cols_to] = squares[:, rows_from, cols_from]
    return shifted.reshape(len(squares), SIDE * SIDE)


def augment_with_shifts(
    X: np.ndarray, y: np.ndarray, shifts: Sequence[tuple[int, int]] = ONE_PIXEL_SHIFTS
) -> tuple[np.ndarray, np.ndarray]:
    """The images, then one shifted copy of all of them per ``(dx, dy)``; labels to match."""
    X_augmented = np.concatenate([X, *(shift_images(X, dx, dy) for dx, dy in shifts)])
    return X_augmented, np.tile(y, len(shifts) + 1)


def image_moments(images: np.ndarray, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Centres of mass ``(n, 2)`` (row, column) and slants ``(n,)`` of flattened 28×28 images.

    The slant is the row–column covariance of the ink over its row variance: how many columns the
    stroke moves right per row down (0 for an upright digit, or for a blank image). Computed
    ``batch`` images at a time, so that 60,000 images need tens of MB, not gigabytes.
    """
    flat = np.asarray(images).reshape(-1, SIDE * SIDE)
    parts = [batch_moments(flat[start : start + batch]) for start in range(0, len(flat), batch)]
    if not parts:
        return np.empty((0, 2)), np.empty(0)
    return np.concatenate([c for c, _ in parts]), np.concatenate([s for _, s in parts])


def batch_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image_moments`` of one batch of flattened images."""
    ink = np.asarray(images, dtype=np.float64).reshape(-1, SIDE, SIDE)
    rows = np.arange(SIDE, dtype=np.float64)[:, None]
    cols = np.arange(SIDE, dtype=np.float64)[None, :]
    total = ink.sum(axis=(1, 2))
    safe_total = np.where(total > 0, total, 1.0)
    centre_row = (ink * rows).sum(axis=(1, 2)) / safe_total
    centre_col = (ink * cols).sum(axis=(1, 2)) / safe_total
    drow = rows[None] - centre_row[:, None, None]
    dcol = cols[None] - centre_col[:, None, None]
    row_variance = (ink * drow**2).sum(axis=(1, 2)) / safe_total
    covariance = (ink * drow * dcol).sum(axis=(1, 2)) / safe_total
    slant = np.divide(covariance, row_variance, out=np.zeros_like(total), where=row_variance > 0)
    return np.column_stack([centre_row, centre_col]), slant


def deskew(images: np.ndarray) -> np.ndarray:
    """Shear each flattened 28×28 image upright and centre its ink (cubic spline); uint8 pixels.

    Each output pixel ``o`` takes the input at ``centre + [[1, 0], [slant, 1]] @ (o - (14, 14))``,
    the classic deskewing by image moments (as in LeCun's table's "deskewing" preprocessing).
    """
    squares = np.asarray(images, dtype=np.float64).reshape(-1, SIDE, SIDE)
    centres, slants = image_moments(squares)
    middle = np.array([SIDE / 2, SIDE / 2])
    straightened = np.empty_like(squares)
    for index, (square, centre, slant) in enumerate(zip(squares, centres, slants, strict=True)):
        shear = np.array([[1.0, 0.0], [slant, 1.0]])
        ndimage.affine_transform(
            square, shear, offset=centre - shear @ middle, order=3, output=straightened[index]
        )
    return np.clip(np.rint(straightened), 0, 255).astype(np.uint8).reshape(len(squares), -1)


def blur_and_sample(blur: float) -> np.ndarray:
    """The (7, 28) matrix that Gaussian-blurs a line of pixels and reads it at 2, 6, …, 26."""
    offsets = np.arange(SIDE)[None, :] - np.arange(2, SIDE, 4)[:, None]
    weights = np.exp(-(offsets**2) / (2 * blur**2))
    return weights / weights.sum(axis=1, keepdims=True)


def direction_planes(images: np.ndarray, directions: int, blur: float) -> np.ndarray:
    """``direction_features`` of one batch of flattened images."""
    n_images = len(images)
    squares = np.asarray(images, dtype=np.float64).reshape(n_images, SIDE, SIDE) / 255
    gx = ndimage.correlate1d(ndimage.correlate1d(squares, [1, 2, 1], axis=1), [-1, 0, 1], axis=2)
    gy = ndimage.correlate1d(ndimage.correlate1d(squares, [1, 2, 1], axis=2), [-1, 0, 1], axis=1)
    gx, gy = gx.reshape(n_images, -1), gy.reshape(n_images, -1)
    image, pixel = np.nonzero((gx != 0) | (gy != 0))
    x, y = gx[image, pixel], gy[image, pixel]
    magnitude = np.hypot(x, y)
    position = np.arctan2(y, x) * (directions / (2 * np.pi))
    lower = np.floor(position)
    upper_share = position - lower
    lower = lower.astype(np.int64) % directions
    planes = np.zeros((n_images, directions, SIDE * SIDE), dtype=np.float64)
    planes[image, lower, pixel] = magnitude * (1 - upper_share)
    planes[image, (lower + 1) % directions, pixel] = magnitude * upper_share
    sampler = blur_and_sample(blur)
    n_grid = len(sampler)
    by_column = (planes.reshape(-1, SIDE) @ sampler.T).reshape(-1, SIDE, n_grid)
    by_row = sampler @ by_column.transpose(1, 0, 2).reshape(SIDE, -1)
    sampled = by_row.reshape(n_grid, n_images, directions, n_grid).transpose(1, 2, 0, 3)
    return np.sqrt(np.maximum(sampled, 0)).reshape(n_images, -1)


def direction_features(
    images: np.ndarray, directions: int = 8, blur: float = 1.6, batch: int = 2048
) -> np.ndarray:
    """Stroke-direction features: gradient planes per direction, blurred, sampled on a 7×7 grid.

    Each pixel's Sobel gradient is split between the two nearest of ``directions`` compass
    directions; each direction plane is smoothed by a Gaussian of ``blur`` pixels and read every
    4 pixels around the centre (rows and columns 2, 6, …, 26); square roots tame large values.
    That gives ``directions × 49`` features per image, in the spirit of Liu et al. (2003).

    Computed in double precision: in single precision, the rounding of the blur's matrix products
    depends on the CPU's instruction set and the number of BLAS threads, and those last-bit
    differences were enough to change which training images the SVM keeps as support vectors.
    """
    flat = np.asarray(images).reshape(-1, SIDE * SIDE)
    batches = [flat[start : start + batch] for start in range(0, len(flat), batch)]
    return np.concatenate([direction_planes(part, directions, blur) for part in batches])


def float_pixels(images: np.ndarray) -> np.ndarray:
    """Pixels as float64, unscaled: whole numbers, so squared distances between them stay exact.

    scikit-learn's fast nearest-neighbour search takes floating-point input only; given uint8
    pixels, a KNN falls back to distance matrices computed a gigabyte at a time, besides further
    float copies of the training set. Converting once first finds the same neighbours with a
    fraction of the memory.
    """
    return np.asarray(images, dtype=np.float64)


def on_float_pixels(estimator: BaseEstimator) -> Pipeline:
    """``estimator`` fed :func:`float_pixels`: for a KNN, the same neighbours, found frugally."""
    return make_pipeline(FunctionTransformer(float_pixels), estimator)


def unit_pixels(images: np.ndarray) -> np.ndarray:
    """Pixels scaled from 0–255 to 0–1 (float32)."""
    return np.asarray(images, dtype=np.float32) / 255
