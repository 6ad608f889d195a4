"""The study's figures, drawn on scikit-learn's Displays; ``figures`` styles and saves them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = [
    "plot_accuracy_points",
    "plot_curves",
    "plot_detector_weights",
    "plot_digits",
    "plot_error_grid",
    "plot_image_rows",
    "plot_labelled_digits",
    "plot_model_choice",
    "plot_pixel_map",
    "plot_precision_recall_vs_threshold",
    "plot_score_points",
    "plot_scores_against_goal",
    "plot_shifted_copies",
    "plot_threshold_views",
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


def plot_precision_recall_vs_threshold(
    precisions: np.ndarray,
    recalls: np.ndarray,
    thresholds: np.ndarray,
    chosen: float,
    ax: plt.Axes | None = None,
    chosen_name: str = "chosen threshold",
) -> plt.Axes:
    """Precision and recall as functions of the decision threshold, with one threshold marked.

    The marked threshold is named in the legend (``chosen_name`` and its value), and the
    precision and recall it gives are dotted across to the axis, as in the book's figure.
    """
    ax = ax if ax is not None else plt.gca()
    ax.plot(thresholds, precisions[:-1], "b--", label="Precision", linewidth=2)
    ax.plot(thresholds, recalls[:-1], "g-", label="Recall", linewidth=2)
    index = int(np.searchsorted(thresholds, chosen))
    ax.axvline(chosen, color="k", linestyle=":", label=f"{chosen_name}: {chosen:,.0f}")
    for value, colour in ((precisions[index], "b"), (recalls[index], "g")):
        ax.plot([chosen], [value], "o", color=colour)
        ax.plot([ax.get_xlim()[0], chosen], [value, value], ":", color=colour, linewidth=1)
    ax.set_xlabel("Decision threshold")
    ax.set_ylabel("Precision and recall")
    ax.xaxis.set_major_formatter(mpl.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    return ax


def plot_curves(
    kind: str,
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    ax: plt.Axes,
    points: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """ROC (``kind="roc"``) or precision–recall (``"pr"``) curves of several models' scores.

    scikit-learn's Display classes draw them; the legend gives each area to four decimals (the
    Displays round to two, which shows 0.9983 as 1.00). ``points`` marks operating points, each
    named in the legend: ``{label: (x, y)}`` in the curve's coordinates.
    """
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    display_class = {"roc": RocCurveDisplay, "pr": PrecisionRecallDisplay}[kind]
    for index, (name, y_score) in enumerate(scores.items()):
        display = display_class.from_predictions(
            y_true,
            y_score,
            ax=ax,
            plot_chance_level=index == len(scores) - 1,
            curve_kwargs={"linewidth": 2, "linestyle": ["-", "--", ":", "-."][index % 4]},
        )
        area = display.roc_auc if kind == "roc" else display.average_precision
        display.line_.set_label(f"{name} ({'AUC' if kind == 'roc' else 'AP'} = {area:.4f})")
    for (label, (x, y)), marker in zip((points or {}).items(), "o*sD^v", strict=False):
        ax.plot([x], [y], marker, color="k", markersize=9 if marker == "*" else 6, label=label)
    ax.legend(loc="lower right" if kind == "roc" else "lower left")
    ax.grid(alpha=0.3)


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


def plot_score_points(
    table: pd.DataFrame,
    low: pd.DataFrame,
    high: pd.DataFrame,
    ax: plt.Axes | None = None,
    decimals: int = 4,
    xlabel: str = "score, with its 95% confidence interval",
) -> plt.Axes:
    """Scores as points with their interval bars: a row per measure (the index), a marker per model.

    ``low`` and ``high`` are shaped like ``table``. Points, not bars: a bar is read by its length,
    which misleads on an axis that does not start at zero; a point is read by its position.
    """
    ax = ax if ax is not None else plt.gca()
    positions = np.arange(len(table.index))[::-1].astype(float)
    spacing = 0.5 / max(1, len(table.columns))
    for offset, (column, marker) in enumerate(zip(table.columns, "os^D", strict=False)):
        y = positions + ((len(table.columns) - 1) / 2 - offset) * spacing
        values = table[column].to_numpy()
        errors = [values - low[column].to_numpy(), high[column].to_numpy() - values]
        ax.errorbar(values, y, xerr=errors, fmt=marker, capsize=3, markersize=6, label=str(column))
        for value, right, row in zip(values, high[column].to_numpy(), y, strict=True):
            ax.text(right, row, f"  {value:.{decimals}f}", va="center", fontsize=9)
    ax.set_yticks(positions, [str(name) for name in table.index])
    ax.set_ylim(positions.min() - 0.6, positions.max() + 0.6)
    left = np.floor(low.to_numpy().min() * 20) / 20
    ax.set_xlim(left, 1.0 + (1.0 - left) * 0.16)
    ax.set_xticks(np.round(np.arange(left, 1.0001, 0.05 if 1.0 - left <= 0.5 else 0.1), 2))
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower left", frameon=False)
    return ax


def plot_scores_against_goal(
    table: pd.DataFrame,
    low: pd.DataFrame,
    high: pd.DataFrame,
    ax: plt.Axes | None = None,
    goal: float | None = None,
    decimals: int | None = None,
    fontsize: float = 9,
) -> plt.Axes:
    """Scores as points with their intervals: one group per row of ``table``, one point per column.

    Points, not bars: on an axis that cannot start at zero (scores between 0.94 and 1), a bar's
    length would exaggerate the differences. ``low`` and ``high`` are shaped like ``table``;
    ``decimals`` writes each value beside its point.
    """
    ax = ax if ax is not None else plt.gca()
    n_series = len(table.columns)
    step = 0.6 / max(n_series, 1)
    positions = np.arange(len(table.index))
    markers = ["o", "s", "D", "^"]
    for offset, column in enumerate(table.columns):
        x = positions + (offset - (n_series - 1) / 2) * step
        values = table[column].to_numpy(dtype=float)
        errors = [values - low[column].to_numpy(dtype=float), high[column].to_numpy() - values]
        ax.errorbar(
            x,
            values,
            yerr=errors,
            fmt=markers[offset % len(markers)],
            capsize=3,
            markersize=5,
            label=str(column),
        )
        if decimals is not None:
            for x_point, value in zip(x, values, strict=True):
                ax.text(
                    x_point + 0.06, value, f"{value:.{decimals}f}", va="center", fontsize=fontsize
                )
    if goal is not None:
        ax.axhline(goal, color="crimson", linestyle="--", linewidth=1.2, label=f"goal {goal:.0%}")
    ax.set_xticks(positions, [str(i) for i in table.index])
    ax.set_xlim(-0.6, len(positions) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=fontsize, frameon=False)
    return ax


def plot_accuracy_points(
    scores: pd.DataFrame,
    chosen: str,
    ax: plt.Axes | None = None,
    goal: float | None = 0.97,
    xlabel: str = "test accuracy, with its 95% confidence interval",
    mark: str = "chosen",
) -> plt.Axes:
    """Each approach's accuracy as a point with its interval, one row each; ``chosen`` stands out.

    ``scores`` has one row per approach (the index names it) and the columns ``"accuracy"``,
    ``"low"``, ``"high"`` and ``"training images"``. Points, not bars: the axis starts near the
    lowest score, where a bar's length would exaggerate the differences. ``mark`` says, in
    brackets after its name, why ``chosen`` stands out.
    """
    ax = ax if ax is not None else plt.gca()
    positions = np.arange(len(scores))[::-1]
    accuracies = scores["accuracy"].to_numpy()
    errors = [accuracies - scores["low"].to_numpy(), scores["high"].to_numpy() - accuracies]
    for position, name, accuracy, low_error, high_error in zip(
        positions, scores.index, accuracies, *errors, strict=True
    ):
        colour = "tab:orange" if name == chosen else "tab:blue"
        ax.errorbar(
            accuracy,
            position,
            xerr=[[low_error], [high_error]],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=3,
            markersize=6,
        )
    low = np.floor((min(goal or 1.0, scores["low"].min()) - 0.005) * 100) / 100
    ax.set_xlim(low, 1.0)
    ax.set_ylim(-0.5, len(scores) - 0.2)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    columns = (scores.index, scores["training images"], accuracies, scores["high"])
    for position, name, images, accuracy, high in zip(positions, *columns, strict=True):
        label = f"{name}, {images:,} training images" + (f"  ({mark})" if name == chosen else "")
        ax.text(low, position + 0.22, label, va="bottom", fontsize=9)
        ax.text(high + 0.0005, position, f" {accuracy:.2%}", va="center", fontsize=9)
    if goal is not None:
        ax.axvline(goal, color="crimson", linestyle="--", linewidth=1)
        ax.text(goal, len(scores) - 0.35, f" {goal:.0%} goal", color="crimson", fontsize=9)
    ax.set_xlabel(xlabel)
    return ax


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


def plot_model_choice(
    equal: pd.DataFrame,
    full: pd.DataFrame,
    winner: str,
    labels: tuple[str, str],
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Each candidate's accuracy as a point with its 95 % interval: on equal terms, and in full.

    ``equal`` and ``full`` have one row per candidate (the index names it; ``full`` may lack some)
    and the columns ``"accuracy"``, ``"low"`` and ``"high"``. The candidates are drawn top to
    bottom in ``equal``'s order, ``winner`` in orange; ``labels`` name the two kinds of points in
    the legend, under the axes (say what each fold trained on). Points, not bars: the axis need
    not start at 0.
    """
    from matplotlib.lines import Line2D

    ax = ax if ax is not None else plt.gca()
    positions = dict(zip(equal.index, np.arange(len(equal))[::-1], strict=True))
    kinds = ((equal, "o", 0.14), (full, "D", -0.14))
    for frame, marker, offset in kinds:
        for name, row in frame.loc[[n for n in equal.index if n in frame.index]].iterrows():
            colour = "tab:orange" if name == winner else "tab:blue"
            y = positions[name] + offset
            ax.errorbar(
                row["accuracy"],
                y,
                xerr=[[row["accuracy"] - row["low"]], [row["high"] - row["accuracy"]]],
                fmt=marker,
                color=colour,
                markerfacecolor=colour if marker == "o" else "white",
                capsize=3,
            )
            ax.text(row["high"], y, f"  {row['accuracy']:.2%}", va="center", fontsize=10)
    for name in equal.index.difference(full.index, sort=False):
        y = positions[name] + kinds[1][2]
        ax.text(equal.loc[name, "high"], y, "  not run on all images", va="center", fontsize=10)
    ax.set_yticks(
        list(positions.values()),
        [f"{name}\n(wins by the rule)" if name == winner else name for name in positions],
    )
    ax.set_ylim(-0.6, len(equal) - 0.4)
    low = min(equal["low"].min(), full["low"].min() if len(full) else 1.0)
    ax.set_xlim(low - 0.01, 1.0)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D(
            [], [], marker=marker, color="0.3", markerfacecolor="0.3" if marker == "o" else "white"
        )
        for _, marker, _ in kinds
    ]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, -0.16), frameon=False)
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


def plot_threshold_views(
    table,
    images: np.ndarray,
    thresholds: Mapping[str, float],
    curve: tuple[np.ndarray, np.ndarray],
    fig: plt.Figure,
    per_strip: int = 5,
) -> None:
    """The threshold explorer's view at several thresholds, one column each (stage 2's figure).

    ``table`` is a ``threshold_explorer.ScoreTable``; ``curve`` the (precisions, recalls) of
    ``precision_recall_curve``. Each column: the point on the precision–recall curve, the
    measures and confusion counts at that threshold, the 5s just below it (missed) and the
    other digits just above it (called 5).
    """
    grid = fig.add_gridspec(4, len(thresholds), height_ratios=[2.2, 1.25, 0.8, 0.8])
    precisions, recalls = curve
    named = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
    for column, (name, threshold) in enumerate(thresholds.items()):
        measures, counts = table.measures(threshold), table.counts(threshold)
        ax = fig.add_subplot(grid[0, column])
        ax.plot(recalls, precisions, color="tab:blue", linewidth=2)
        ax.plot(measures["recall"], measures["precision"], "o", color="tab:red", markersize=9)
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", title=f"{name}\n{threshold:,.0f}")
        if column == 0:
            ax.set_ylabel("precision")
        ax.grid(alpha=0.3)
        text = fig.add_subplot(grid[1, column])
        text.set_axis_off()
        text.text(
            0.0,
            1.0,
            "\n".join(
                [
                    *(f"{name:<12}{measures[key]:>7.4f}" for key, name in named),
                    f"{'5s found':<12}{counts['tp']:>7,}",
                    f"{'5s missed':<12}{counts['fn']:>7,}",
                    f"{'non-5s as 5':<12}{counts['fp']:>7,}",
                ]
            ),
            va="top",
            fontsize=11,
            family="monospace",
        )
        missed, accepted = (table.order[p] for p in table.near(threshold, per_strip))
        for row, chosen, caption in (
            (2, missed, "5s just below: missed"),
            (3, accepted, "others just above: called 5"),
        ):
            strip = fig.add_subplot(grid[row, column])
            plot_digits(images[chosen], ax=strip, per_row=per_strip)
            strip.set_title(caption, fontsize=11)
