"""README figures: readable at the width GitHub shows them, and free of version metadata."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mnist_study import curve_plots, figures, plots, score_plots


@pytest.fixture(autouse=True)
def study_style():
    figures.use_study_style()
    yield
    plt.close("all")


def test_a_readable_figure_is_saved_without_software_metadata(tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("a readable title")
    path = figures.save_readme_figure(fig, "ok.png", tmp_path)
    raw = path.read_bytes()
    assert raw.startswith(b"\x89PNG") and b"Software" not in raw and b"matplotlib" not in raw


@pytest.mark.parametrize("kind", ["a file", "read-only"])
def test_a_figure_folder_that_cannot_be_written_gets_a_plain_message(tmp_path: Path, kind) -> None:
    folder = tmp_path / "figures"
    if kind == "a file":
        folder.write_text("not a folder")
    else:
        folder.mkdir()
        folder.chmod(0o500)
        if os.access(folder, os.W_OK):
            pytest.skip("this user writes into read-only folders (root): a file stands in for it")
    fig, _ = plt.subplots(figsize=(4, 3))
    with pytest.raises(figures.FigureFolderError, match="set figure_dir in the notebook"):
        figures.save_readme_figure(fig, "ok.png", folder)


def test_text_too_small_at_readme_width_is_refused_and_nothing_written(tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(18, 4))  # 2,160 px wide: shrunk by 0.4 on GitHub
    ax.plot([0, 1], [0, 1])
    ax.set_title("this 10-point title would be 6.8 px high")
    with pytest.raises(ValueError, match="smallest text would be"):
        figures.save_readme_figure(fig, "too_wide.png", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tiny_text_is_refused_even_in_a_narrow_figure(tmp_path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, "footnote", fontsize=4)
    with pytest.raises(ValueError, match="at least 9 px"):
        figures.save_readme_figure(fig, "tiny.png", tmp_path)


def test_hidden_axes_do_not_count_as_text() -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.tick_params(labelsize=3)
    ax.set_axis_off()
    ax.set_title("shown", fontsize=12)
    assert figures.smallest_text_pt(fig) == 12


def test_curves_show_their_area_to_four_decimals() -> None:
    _, ax = plt.subplots()
    y = np.array([0, 0, 1, 1, 0, 1])
    curve_plots.plot_curves("roc", y, {"model": np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])}, ax)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[0] == "model (AUC = 0.8889)"


def test_the_marked_threshold_is_named_and_both_axes_are_labelled() -> None:
    _, ax = plt.subplots()
    thresholds = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    precisions = np.array([0.5, 0.6, 0.7, 0.9, 1.0, 1.0])
    recalls = np.array([1.0, 0.9, 0.8, 0.5, 0.2, 0.0])
    curve_plots.plot_precision_recall_vs_threshold(
        precisions, recalls, thresholds, 1.0, ax, chosen_name="threshold for 90% precision"
    )
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "threshold for 90% precision: 1" in labels
    assert ax.get_ylabel() and ax.get_xlabel() == "Decision threshold"
    marked = [line for line in ax.lines if line.get_marker() == "o"]
    assert sorted(line.get_ydata()[0] for line in marked) == [0.5, 0.9]


def test_operating_points_are_marked_and_named() -> None:
    _, ax = plt.subplots()
    y = np.array([0, 0, 1, 1, 0, 1])
    scores = {"model": np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])}
    curve_plots.plot_curves("roc", y, scores, ax, points={"default": (0.0, 2 / 3)})
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "default" in labels
    (point,) = [line for line in ax.lines if line.get_label() == "default"]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (0.0, 2 / 3)


def test_scores_are_points_with_intervals_not_bars() -> None:
    _, ax = plt.subplots()
    table = pd.DataFrame({"a": [0.7, 0.96], "b": [0.9, 0.998]}, index=["F1", "ROC AUC"])
    score_plots.plot_score_points(table, table - 0.01, table + 0.001, ax)
    assert not ax.patches, "no bars"
    assert {text.get_text().strip() for text in ax.texts} == {
        "0.7000",
        "0.9600",
        "0.9000",
        "0.9980",
    }
    assert max(ax.get_xticks()) <= 1.0
    assert [label.get_text() for label in ax.get_yticklabels()] == ["F1", "ROC AUC"]


def test_scores_against_a_goal_are_points_not_bars() -> None:
    _, ax = plt.subplots()
    table = pd.DataFrame({"precision": [0.96, 0.98], "recall": [0.95, 0.99]}, index=["2", "8"])
    score_plots.plot_scores_against_goal(
        table, low=table - 0.01, high=table + 0.01, ax=ax, goal=0.97
    )
    assert not ax.patches, "no bars"
    assert len(ax.containers) == 2, "one series of points with error bars per column"
    assert ax.get_ylim()[0] > 0.9


def test_accuracy_points_mark_the_chosen_approach() -> None:
    _, ax = plt.subplots()
    scores = pd.DataFrame(
        {
            "accuracy": [0.97, 0.99],
            "low": [0.96, 0.98],
            "high": [0.98, 0.995],
            "training images": [60_000, 60_000],
        },
        index=["forest", "deskewed svm"],
    )
    score_plots.plot_accuracy_points(scores, "deskewed svm", ax)
    assert not ax.patches, "no bars"
    assert any("(chosen)" in t.get_text() and "deskewed svm" in t.get_text() for t in ax.texts)


def test_labelled_digits_put_each_label_above_its_own_digit() -> None:
    _, ax = plt.subplots()
    images = np.zeros((5, 784))
    images[3, 0] = 255  # the top-left pixel of the fourth digit
    plots.plot_labelled_digits(images, ["4→9", "9→4", "3→5", "7→1", "8→3"], ax, per_row=3)
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 * 38, 3 * 28)
    ((ink_row, ink_column),) = np.argwhere(mosaic == 255)
    assert (ink_row, ink_column) == (38 + 10, 0), "the fourth digit starts the second row"
    positions = {text.get_text(): text.get_position() for text in ax.texts}
    x, y = positions["7→1"]
    assert 0 <= x < 28 and 38 <= y < 38 + 10, "its label sits in the gap above that digit"
    assert not ax.axison


def test_model_choice_draws_points_not_bars_and_marks_the_chosen() -> None:
    _, ax = plt.subplots()
    equal = pd.DataFrame(
        {"accuracy": [0.95, 0.93], "low": [0.94, 0.92], "high": [0.96, 0.94]},
        index=["svc", "forest"],
    )
    full = equal.loc[["forest"]] + 0.02
    score_plots.plot_model_choice(equal, full, "svc", ("10,000 images", "60,000 images"), ax)
    assert not ax.patches, "no bars"
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["svc\n(wins by the rule)", "forest"], "top to bottom, in the given order"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "10,000 images",
        "60,000 images",
    ]
    assert len(ax.lines) > 0 and ax.get_xlim()[1] == 1.0
    assert any("not run" in text.get_text() for text in ax.texts), "svc has no full-data point"


def test_a_pixel_map_is_centred_on_zero_and_says_where_it_is_cut() -> None:
    weights = np.linspace(-30, 60, 784)
    _fig, (ax_full, ax_cut, ax_unsigned) = plt.subplots(1, 3)
    full = plots.plot_pixel_map(weights, ax_full, colorbar_label="weight")
    cut = plots.plot_pixel_map(weights, ax_cut, limit=10.0, colorbar_label="weight")
    unsigned = plots.plot_pixel_map(
        np.abs(weights), ax_unsigned, cmap="viridis", colorbar_label="i"
    )
    assert full.get_clim() == (-60.0, 60.0), "symmetric about zero: white is zero"
    assert full.get_array().shape == (28, 28)
    assert cut.get_clim() == (-10.0, 10.0) and cut.colorbar.extend == "both"
    assert full.colorbar.extend == "neither"
    assert unsigned.get_clim() == (0.0, 60.0), "an importance has no sign: its scale starts at 0"


def test_weight_images_share_one_scale() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(10, 784)) * np.arange(1, 11)[:, None]
    _fig, axes = plt.subplots(2, 5)
    plots.plot_weight_images(weights, [str(d) for d in range(10)], axes.ravel())
    limits = {ax.images[0].get_clim() for ax in axes.ravel()}
    assert limits == {(-np.abs(weights).max(), np.abs(weights).max())}
    assert [ax.get_title() for ax in axes.ravel()][:2] == ["detector of 0", "detector of 1"]


def test_the_threshold_views_show_the_nearest_images_and_stay_readable(tmp_path: Path) -> None:
    from sklearn.metrics import precision_recall_curve

    from mnist_study.threshold_explorer import ScoreTable

    rng = np.random.default_rng(1)
    y_true = rng.random(500) < 0.2
    y_scores = rng.normal(3 * y_true, 1.0)
    images = np.repeat(np.arange(500)[:, None] % 256, 784, axis=1).astype(np.uint8)
    precisions, recalls, _ = precision_recall_curve(y_true, y_scores)
    table = ScoreTable.from_scores(y_true, y_scores)
    fig = plt.figure(figsize=(11, 8.2), layout="constrained")
    stops = {"a": 3.0, "b": 1.0, "c": 2.0}
    curve_plots.plot_threshold_views(table, images, stops, (precisions, recalls), fig)
    figures.save_readme_figure(fig, "views.png", tmp_path)
    # the first strip of the first column: the 5 images of the 5s scored just below 3
    missed, _ = table.near(3.0, 5)
    strip = fig.axes[2].images[0].get_array()
    assert [strip[0, 29 * k] for k in range(5)] == list(images[table.order[missed], 0])
    assert "0.0000" not in " ".join(t.get_text() for t in fig.axes[1].texts)
