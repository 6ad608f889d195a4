"""The library's figures draw what they say, and README figures stay readable at GitHub's width."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve

from mnist_study import curve_plots, figures, plots, score_plots
from mnist_study.descent_plots import plot_loss_curves
from mnist_study.threshold_explorer import ScoreTable


@pytest.fixture(autouse=True)
def ax():
    """An axes in the study's style; every figure closed afterwards."""
    figures.use_study_style()
    yield plt.subplots()[1]
    plt.close("all")


def legend(ax: plt.Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_readme_figures_are_readable_at_githubs_width_and_carry_no_software_metadata(tmp_path):
    """Text under 9 px at GitHub's width (hidden axes aside) is refused and nothing written."""
    wide, ax = plt.subplots(figsize=(18, 4))  # 2,160 px: shrunk by 0.4, its 10-point title 6.8 px
    ax.set_title("a title", fontsize=10)
    with pytest.raises(ValueError, match="smallest text would be"):
        figures.save_readme_figure(wide, "wide.png", tmp_path)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, "footnote", fontsize=4)
    with pytest.raises(ValueError, match="at least 9 px"):
        figures.save_readme_figure(fig, "tiny.png", tmp_path)
    assert list(tmp_path.iterdir()) == []
    ax.texts[0].remove()
    ax.set_title("shown", fontsize=12)
    ax.set_axis_off()
    assert figures.smallest_text_pt(fig) == 12
    raw = figures.save_readme_figure(fig, "ok.png", tmp_path).read_bytes()
    assert raw.startswith(b"\x89PNG") and b"Software" not in raw and b"matplotlib" not in raw
    with pytest.raises(figures.FigureFolderError, match="set figure_dir in the notebook"):
        figures.save_readme_figure(fig, "ok.png", tmp_path / "ok.png")


def test_curves_show_their_area_the_operating_points_and_the_marked_threshold(ax) -> None:
    y, scores = np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    curve_plots.plot_curves("roc", y, {"model": scores}, ax, points={"default": (0.0, 2 / 3)})
    assert legend(ax)[0] == "model (AUC = 0.8889)" and "default" in legend(ax)
    (point,) = [line for line in ax.lines if line.get_label() == "default"]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (0.0, 2 / 3)
    _, ax2 = plt.subplots()
    thresholds = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    precisions = np.array([0.5, 0.6, 0.7, 0.9, 1.0, 1.0])
    recalls = np.array([1.0, 0.9, 0.8, 0.5, 0.2, 0.0])
    curve_plots.plot_precision_recall_vs_threshold(
        precisions, recalls, thresholds, 1.0, ax2, chosen_name="threshold for 90% precision"
    )
    assert "threshold for 90% precision: 1" in legend(ax2)
    assert ax2.get_ylabel() and ax2.get_xlabel() == "Decision threshold"
    marked = [line.get_ydata()[0] for line in ax2.lines if line.get_marker() == "o"]
    assert sorted(marked) == [0.5, 0.9]


def test_scores_are_points_with_intervals_top_down_the_chosen_in_orange(ax) -> None:
    """Rows top down in the table's order, a marker per column, no bars; NaN is said in words."""
    table = pd.DataFrame(
        {"10,000 images": [0.95, 0.93], "60,000 images": [np.nan, 0.96]}, index=["svc", "forest"]
    )
    score_plots.plot_scores(
        table, table - 0.01, table + 0.001, ax, highlight="svc", note="chosen", missing="not run"
    )
    assert not ax.patches and ax.get_xlim()[1] == 1.0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["svc\n(chosen)", "forest"]
    assert legend(ax) == ["10,000 images", "60,000 images"]
    texts = sorted(t.get_text().strip() for t in ax.texts)
    assert texts == ["93.00%", "95.00%", "96.00%", "not run"], "each score beside its bar"
    colours = {line.get_ydata()[0]: line.get_color() for line in ax.lines if len(line.get_ydata())}
    assert colours[max(colours)] == "tab:orange" and colours[min(colours)] == "tab:blue"
    _, ax = plt.subplots()
    score_plots.plot_scores(
        table[["10,000 images"]],
        table[["10,000 images"]] - 0.01,
        table[["10,000 images"]],
        ax,
        goal=0.97,
        value_format=None,
        labels_above=True,
    )
    assert ax.get_yticks().size == 0 and ax.get_legend() is None
    assert {t.get_text() for t in ax.texts} == {"svc", "forest", " 97% goal"}


def test_labelled_digits_put_each_label_above_its_own_digit(ax) -> None:
    images = np.zeros((5, 784))
    images[3, 0] = 255  # the top-left pixel of the fourth digit
    plots.plot_labelled_digits(images, ["4→9", "9→4", "3→5", "7→1", "8→3"], ax, per_row=3)
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 * 38, 3 * 28) and not ax.axison
    assert np.argwhere(mosaic == 255).tolist() == [[38 + 10, 0]], "the second row's first digit"
    x, y = {text.get_text(): text.get_position() for text in ax.texts}["7→1"]
    assert 0 <= x < 28 and 38 <= y < 38 + 10, "its label sits in the gap above that digit"


def test_a_pixel_map_is_centred_on_zero_and_says_where_it_is_cut() -> None:
    weights = np.linspace(-30, 60, 784)
    _, (ax_full, ax_cut, ax_abs) = plt.subplots(1, 3)
    full = plots.plot_pixel_map(weights, ax_full, colorbar_label="weight")
    cut = plots.plot_pixel_map(weights, ax_cut, limit=10.0, colorbar_label="weight")
    unsigned = plots.plot_pixel_map(np.abs(weights), ax_abs, cmap="viridis", colorbar_label="i")
    assert full.get_clim() == (-60.0, 60.0), "symmetric about zero: white is zero"
    assert full.get_array().shape == (28, 28) and full.colorbar.extend == "neither"
    assert cut.get_clim() == (-10.0, 10.0) and cut.colorbar.extend == "both"
    assert unsigned.get_clim() == (0.0, 60.0), "an importance has no sign: its scale starts at 0"


def test_weight_images_and_image_rows_share_one_scale() -> None:
    """Weights on one scale symmetric about zero; images on 0-255, clipped."""
    weights = np.random.default_rng(0).normal(size=(10, 784)) * np.arange(1, 11)[:, None]
    _, axes = plt.subplots(2, 5)
    plots.plot_weight_images(weights, [str(d) for d in range(10)], axes.ravel())
    limit = np.abs(weights).max()
    assert {ax.images[0].get_clim() for ax in axes.ravel()} == {(-limit, limit)}
    assert [ax.get_title() for ax in axes.ravel()][:2] == ["detector of 0", "detector of 1"]
    noisy = np.full((6, 784), 300)
    fig = plots.plot_image_rows({"noisy": noisy, "originals": noisy // 2, "blank": 0 * noisy})
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["noisy", "originals", "blank"]
    assert {ax.images[0].get_clim() for ax in fig.axes} == {(0, 255)}
    assert max(ax.images[0].get_array().max() for ax in fig.axes) <= 255


def test_the_threshold_views_show_the_nearest_images_and_stay_readable(tmp_path: Path) -> None:
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


def test_loss_curves_are_drawn_against_images_and_against_updates() -> None:
    """Notebook 09's figure: each curve where its history puts it, on both measures of work."""
    batch, mini_batch = [[0, 0.69], [100, 0.5], [200, 0.4]], [[0, 0.69], [20, 0.45], [200, 0.3]]
    histories = {"batch": np.array(batch), "mini-batch": np.array(mini_batch)}
    _, axes = plt.subplots(1, 2)
    plot_loss_curves(histories, {"batch": 100, "mini-batch": 10}, {"library": (300, 3, 0.2)}, axes)
    by_images, by_updates = ({line.get_label(): line for line in ax.lines} for ax in axes)
    assert by_images["batch"].get_xdata().tolist() == [100, 200], "the start is not on a log axis"
    assert by_updates["batch"].get_xdata().tolist() == [1, 2]
    assert by_updates["mini-batch"].get_xdata().tolist() == [2, 20]
    assert by_updates["mini-batch"].get_ydata().tolist() == [0.45, 0.3]
    assert (by_images["library"].get_xdata()[0], by_updates["library"].get_xdata()[0]) == (300, 3)
    assert by_images["start (all weights 0)"].get_ydata()[0] == 0.69
    assert [ax.get_xscale() for ax in axes] == ["log", "log"]
