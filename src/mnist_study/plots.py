"""Pictures of digits and of what models learn from their pixels; ``figures`` styles and saves them.

The plots of scores are in ``score_plots``, a detector's curves in ``curve_plots``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "plot_detector_weights",
    "plot_digits",
    "plot_error_grid",
    "plot_image_rows",
    "plot_labelled_digits",
    "plot_pixel_map",
    "plot_shifted_copies",
    "plot_weight_images",
]


def plot_digits(
    images: np.ndarray,
    ax: plt.Axes | None = None,
    per_row: int = 10,
    labels: Sequence[str] | None = None,
) -> plt.Axes:
    """Draw flattened 28×28 images as one grid of tiles (optionally titled with ``labels``)."""
    ax = ax if ax is not None else plt.gca()
    images = np.asarray(images).reshape(-1, 28, 28)
    n_rows = max(1, -(-len(images) // per_row))
    canvas = np.zeros((n_rows * 29 - 1, per_row * 29 - 1))
    for index, image in enumerate(images):
        row, col = divmod(index, per_row)
        canvas[row * 29 : row * 29 + 28, col * 29 : col * 29 + 28] = image
    ax.imshow(canvas, cmap="binary", interpolation="nearest")
    ax.set_axis_off()
    if labels is not None:
        for index, label in enumerate(labels):
            row, col = divmod(index, per_row)
            ax.text(col * 29 + 1, row * 29 + 6, label, fontsize=7, color="tab:red")
    return ax


def plot_shifted_copies(
    image: np.ndarray, shifts: Sequence[tuple[int, int]], axes: Sequence[plt.Axes]
) -> None:
    """One image and its shifted copies, zoomed in, each outlined where the original's ink was."""
    from mnist_study.features import shift_images

    original = np.asarray(image).reshape(1, -1)
    copies = [original, *(shift_images(original, dx, dy) for dx, dy in shifts)]
    names = ["original"] + [
        " ".join(
            f"{abs(step)} px {word}"
            for step, word in (
                (dx, "right" if dx > 0 else "left"),
                (dy, "down" if dy > 0 else "up"),
            )
            if step
        )
        for dx, dy in shifts
    ]
    outline = original.reshape(28, 28)
    for ax, copy, name in zip(axes, copies, names, strict=True):
        ax.imshow(copy.reshape(28, 28)[2:26, 2:26], cmap="binary", interpolation="nearest")
        ax.contour(outline[2:26, 2:26], levels=[128], colors="tab:red", linewidths=0.8)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()


def plot_error_grid(
    X: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    pair: tuple[str, str],
    axes: np.ndarray,
    per_block: int = 25,
) -> None:
    """A 2×2 grid of images for two digits a, b: rows the true digit, columns the prediction."""
    for row, actual in enumerate(pair):
        for col, predicted in enumerate(pair):
            matching = X[(y_true == actual) & (y_pred == predicted)]
            chosen = matching[:per_block]
            ax = axes[row, col]
            plot_digits(chosen, ax=ax, per_row=5)
            ax.set_title(
                f"true {actual}, read as {predicted}\n{len(chosen)} of {len(matching):,} shown"
            )


def plot_image_rows(
    rows: Mapping[str, np.ndarray], width: float = 8.0, fontsize: float = 11
) -> plt.Figure:
    """One row of 28×28 tiles per entry of ``rows``, titled with its key, on a common grey scale.

    Every row is drawn from white (0) to black (255), so that the rows can be compared; larger
    pixel values (noisy images reach 354) are drawn black.
    """
    n_images = max(len(images) for images in rows.values())
    tile = width / n_images
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(width, len(rows) * (tile + 0.3)), squeeze=False, layout="constrained"
    )
    for ax, (title, images) in zip(axes[:, 0], rows.items(), strict=True):
        plot_digits(np.clip(images, 0, 255), ax=ax, per_row=n_images)
        ax.images[0].set_clim(0, 255)
        ax.set_title(title, loc="left", fontsize=fontsize)
    return fig


def plot_labelled_digits(
    images: np.ndarray, labels: Sequence[str], ax: plt.Axes, per_row: int = 12, fontsize: float = 8
) -> plt.Axes:
    """The digits as one picture, ``per_row`` to a row, each label in the gap above its digit.

    One image in one axes rather than an axes per digit: a grid of 60 axes takes seconds to lay out
    and draw.
    """
    rows = max(1, -(-len(images) // per_row))
    gap = 10  # pixels of blank paper above each digit, where its label goes
    mosaic = np.zeros((rows * (28 + gap), per_row * 28))
    for index, image in enumerate(images):
        row, column = divmod(index, per_row)
        top = row * (28 + gap) + gap
        mosaic[top : top + 28, column * 28 : (column + 1) * 28] = np.reshape(image, (28, 28))
    ax.imshow(mosaic, cmap="binary", interpolation="nearest")
    for index, label in enumerate(labels[: len(images)]):
        row, column = divmod(index, per_row)
        ax.text(
            column * 28 + 13.5,
            row * (28 + gap) + gap - 1.5,
            label,
            ha="center",
            va="bottom",
            fontsize=fontsize,
            color="tab:red",
        )
    ax.set_axis_off()
    return ax


def frame_image(ax: plt.Axes) -> None:
    """No ticks, and a thin grey frame on all four sides, so a blank border still shows."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("0.75")


def plot_pixel_map(
    values: np.ndarray,
    ax: plt.Axes,
    limit: float | None = None,
    cmap: str = "RdBu_r",
    colorbar_label: str | None = None,
) -> mpl.image.AxesImage:
    """784 numbers, one per pixel, as a 28×28 image; with a colour bar if ``colorbar_label``.

    The default colour map diverges around zero: red for positive values, blue for negative,
    white for zero, on a scale symmetric about zero that ends at ``limit`` (by default the largest
    absolute value; a smaller limit draws larger values in the end colours, and the colour bar
    ends in arrows). A sequential ``cmap`` is for values without a sign: its scale runs from 0.
    """
    values = np.asarray(values, dtype=float).reshape(28, 28)
    largest = float(np.abs(values).max())
    limit = largest if limit is None else limit
    diverging = cmap in {"RdBu_r", "RdBu", "coolwarm", "bwr", "seismic"}
    image = ax.imshow(
        values, cmap=cmap, vmin=-limit if diverging else 0.0, vmax=limit, interpolation="nearest"
    )
    frame_image(ax)
    if colorbar_label is not None:
        extend = ("both" if diverging else "max") if limit < largest else "neither"
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, extend=extend)
        bar.set_label(colorbar_label)
    return image


def plot_detector_weights(
    weights: np.ndarray,
    mean_5: np.ndarray,
    mean_other: np.ndarray,
    axes: Sequence[plt.Axes],
    limit: float | None = None,
) -> None:
    """Stage 1: the average 5, the average non-5, and a linear 5-detector's 784 weights.

    The averages are drawn in grey levels from white (0) to black (255), the weights on a
    diverging scale centred on zero that ends at ``limit`` (see ``plot_pixel_map``), with its
    colour bar.
    """
    for ax, image, title in zip(
        axes[:2], (mean_5, mean_other), ("the average 5", "the average non-5"), strict=True
    ):
        ax.imshow(np.asarray(image).reshape(28, 28), cmap="binary", vmin=0, vmax=255)
        frame_image(ax)
        ax.set_title(title)
    plot_pixel_map(weights, axes[2], limit=limit, colorbar_label="weight (red: towards '5')")
    axes[2].set_title("the detector's 784 weights")


def plot_weight_images(
    weights: np.ndarray,
    classes: Sequence[str],
    axes: Sequence[plt.Axes],
    limit: float | None = None,
) -> mpl.image.AxesImage:
    """Several detectors' weights, one 28×28 image each, titled by class, on one common scale.

    The scale is symmetric about zero, ends at ``limit`` (by default the largest absolute weight)
    and is common to all images, so that colours compare across detectors; the last image is
    returned for a shared colour bar.
    """
    limit = float(np.abs(weights).max()) if limit is None else limit
    image = None
    for ax, row, name in zip(axes, weights, classes, strict=True):
        image = plot_pixel_map(row, ax, limit=limit)
        ax.set_title(f"detector of {name}")
    return image
