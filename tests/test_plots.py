"""The library's figures draw what they say, and README figures stay readable at GitHub's width."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_curve, roc_auc_score

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
    for size, points in ((18, 10), (6, 4)):  # 18 inches wide: 10 points shrink to 8.4 px
        fig, ax = plt.subplots(figsize=(size, 4))
        ax.set_title("a title", fontsize=points)
        with pytest.raises(ValueError, match=r"smallest text would be .*at least 9 px"):
            figures.save_readme_figure(fig, "small.png", tmp_path)
    assert list(tmp_path.iterdir()) == []
    ax.set_title("shown", fontsize=12)
    ax.set_axis_off()
    assert figures.smallest_text_pt(fig) == 12
    raw = figures.save_readme_figure(fig, "ok.png", tmp_path).read_bytes()
    assert raw.startswith(b"\x89PNG") and b"Software" not in raw and b"matplotlib" not in raw
    with pytest.raises(figures.FigureFolderError, match="set figure_dir in the notebook"):
        figures.save_readme_figure(fig, "ok.png", tmp_path / "ok.png")


def test_a_detectors_curves_show_areas_points_the_threshold_and_the_nearest_images(ax, tmp_path):
    """Areas to four decimals; a threshold's measures, point and nearest images; readable."""
    rng = np.random.default_rng(1)
    y_true = rng.random(500) < 0.2
    y_scores = rng.normal(3 * y_true, 1.0)
    table = ScoreTable.from_scores(y_true, y_scores)
    curve_plots.plot_curves("roc", y_true, {"model": y_scores}, ax, points={"default": (0.0, 0.5)})
    assert legend(ax)[0] == f"model (AUC = {roc_auc_score(y_true, y_scores):.4f})"
    (point,) = [line for line in ax.lines if line.get_label() == "default"]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (0.0, 0.5) and "default" in legend(ax)
    precisions, recalls, thresholds = precision_recall_curve(y_true, y_scores)
    _, ax = plt.subplots()
    curve_plots.plot_precision_recall_vs_threshold(precisions, recalls, thresholds, 3, ax, "at 3")
    assert "at 3: 3" in legend(ax) and ax.get_xlabel() == "Decision threshold"
    marked = [line.get_ydata()[0] for line in ax.lines if line.get_marker() == "o"]
    assert sorted(marked) == sorted(table.measures(3)[key] for key in ("precision", "recall"))
    images = np.repeat(np.arange(500)[:, None] % 256, 784, axis=1).astype(np.uint8)
    fig = plt.figure(figsize=(11, 8.2), layout="constrained")
    stops = {"a": 3.0, "b": 1.0, "c": 2.0}
    curve_plots.plot_threshold_views(table, images, stops, (precisions, recalls), fig)
    figures.save_readme_figure(fig, "views.png", tmp_path)
    # the first strip of the first column: the 5 images of the 5s scored just below 3
    missed, _ = table.near(3.0, 5)
    strip = fig.axes[2].images[0].get_array()
    assert [strip[0, 29 * k] for k in range(5)] == list(images[table.order[missed], 0])
    assert "0.0000" not in " ".join(t.get_text() for t in fig.axes[1].texts)


def test_scores_are_points_with_intervals_top_down_the_chosen_in_orange(ax) -> None:
    """Rows top down in the table's order, a marker per column, no bars; NaN is said in words."""
    columns = ["10,000 images", "60,000 images"]
    table = pd.DataFrame([[0.95, np.nan], [0.93, 0.96]], index=["svc", "forest"], columns=columns)
    score_plots.plot_scores(
        table, table - 0.01, table + 0.001, ax, highlight="svc", note="chosen", missing="not run"
    )
    assert not ax.patches and ax.get_xlim()[1] == 1.0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["svc\n(chosen)", "forest"]
    assert legend(ax) == columns
    texts = sorted(t.get_text().strip() for t in ax.texts)
    assert texts == ["93.00%", "95.00%", "96.00%", "not run"], "each score beside its bar"
    colours = {line.get_ydata()[0]: line.get_color() for line in ax.lines if len(line.get_ydata())}
    assert colours[max(colours)] == "tab:orange" and colours[min(colours)] == "tab:blue"
    _, ax = plt.subplots()
    one = table[columns[:1]]
    score_plots.plot_scores(one, one, one, ax, goal=0.97, value_format=None, labels_above=True)
    assert ax.get_yticks().size == 0 and ax.get_legend() is None
    assert {t.get_text() for t in ax.texts} == {"svc", "forest", " 97% goal"}


def test_pixel_maps_are_centred_on_zero_and_say_where_they_are_cut_and_rows_share_one_scale():
    """Each map, or all weight images together, symmetric about zero; image rows on 0-255."""
    weights = np.linspace(-30, 60, 784)
    _, (ax_full, ax_cut, ax_abs) = plt.subplots(1, 3)
    full = plots.plot_pixel_map(weights, ax_full, colorbar_label="weight")
    cut = plots.plot_pixel_map(weights, ax_cut, limit=10.0, colorbar_label="weight")
    unsigned = plots.plot_pixel_map(np.abs(weights), ax_abs, cmap="viridis", colorbar_label="i")
    assert full.get_clim() == (-60.0, 60.0), "symmetric about zero: white is zero"
    assert full.get_array().shape == (28, 28) and full.colorbar.extend == "neither"
    assert cut.get_clim() == (-10.0, 10.0) and cut.colorbar.extend == "both"
    assert unsigned.get_clim() == (0.0, 60.0), "an importance has no sign: its scale starts at 0"
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


def test_loss_curves_are_drawn_against_images_and_against_updates() -> None:
    """Notebook 09's figure: each curve against the images it read and the updates it made."""
    history = np.array([[0, 0.69], [20, 0.45], [200, 0.3]])
    _, axes = plt.subplots(1, 2)
    plot_loss_curves({"mini-batch": history}, {"mini-batch": 10}, {"library": (300, 3, 0.2)}, axes)
    by_images, by_updates = ({line.get_label(): line for line in ax.lines} for ax in axes)
    assert by_images["mini-batch"].get_xydata().tolist() == [[20, 0.45], [200, 0.3]], "no start"
    assert by_updates["mini-batch"].get_xdata().tolist() == [2, 20]
    assert (by_images["library"].get_xdata()[0], by_updates["library"].get_xdata()[0]) == (300, 3)
    assert by_images["start (all weights 0)"].get_ydata()[0] == 0.69
    assert [ax.get_xscale() for ax in axes] == ["log", "log"]
