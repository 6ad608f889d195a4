"""README figures: readable at the width GitHub shows them, and free of version metadata."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mnist_study import figures, plots


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


def test_score_axis_that_does_not_start_at_zero_says_so() -> None:
    _, ax = plt.subplots()
    plots.plot_score_bars(pd.DataFrame({"m": [0.97, 0.98]}, index=["x", "y"]), ax, ylim=(0.9, 1))
    assert "starts at 0.9" in ax.get_ylabel()


def test_curves_show_their_area_to_four_decimals() -> None:
    _, ax = plt.subplots()
    y = np.array([0, 0, 1, 1, 0, 1])
    plots.plot_curves("roc", y, {"model": np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])}, ax)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[0] == "model (AUC = 0.8889)"


def test_chosen_approach_stands_out() -> None:
    _, ax = plt.subplots()
    scores = pd.DataFrame(
        {
            "accuracy": [0.97, 0.99],
            "low": [0.96, 0.98],
            "high": [0.98, 0.995],
            "training images": [60_000, 60_000],
        },
        index=["forest", "svm"],
    )
    plots.plot_accuracies(scores, "svm", ax)
    colours = {tuple(bar.get_facecolor()) for bar in ax.patches}
    assert len(colours) == 2
    assert any("(chosen)" in text.get_text() and "svm" in text.get_text() for text in ax.texts)


def test_model_choice_draws_points_not_bars_and_marks_the_chosen() -> None:
    _, ax = plt.subplots()
    equal = pd.DataFrame(
        {"accuracy": [0.95, 0.93], "low": [0.94, 0.92], "high": [0.96, 0.94]},
        index=["svc", "forest"],
    )
    full = equal.loc[["forest"]] + 0.02
    plots.plot_model_choice(equal, full, "svc", ("10,000 images", "60,000 images"), ax)
    assert not ax.patches, "no bars"
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["svc\n(wins by the rule)", "forest"], "top to bottom, in the given order"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "10,000 images",
        "60,000 images",
    ]
    assert len(ax.lines) > 0 and ax.get_xlim()[1] == 1.0
    assert any("not run" in text.get_text() for text in ax.texts), "svc has no full-data point"
