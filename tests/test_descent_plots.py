"""Notebook 09's loss figure: each curve where its history puts it, on both measures of work."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mnist_study.descent_plots import plot_loss_curves


def test_curves_are_drawn_against_images_and_against_updates() -> None:
    histories = {
        "batch": np.array([[0, 0.69], [100, 0.5], [200, 0.4]]),
        "mini-batch": np.array([[0, 0.69], [20, 0.45], [200, 0.3]]),
    }
    fig, axes = plt.subplots(1, 2)
    plot_loss_curves(histories, {"batch": 100, "mini-batch": 10}, {"library": (300, 3, 0.2)}, axes)
    by_images, by_updates = ({line.get_label(): line for line in ax.lines} for ax in axes)
    assert by_images["batch"].get_xdata().tolist() == [100, 200], "the start is not on a log axis"
    assert by_updates["batch"].get_xdata().tolist() == [1, 2]
    assert by_updates["mini-batch"].get_xdata().tolist() == [2, 20]
    assert by_updates["mini-batch"].get_ydata().tolist() == [0.45, 0.3]
    assert (by_images["library"].get_xdata()[0], by_updates["library"].get_xdata()[0]) == (300, 3)
    assert by_images["start (all weights 0)"].get_ydata()[0] == 0.69
    assert [ax.get_xscale() for ax in axes] == ["log", "log"]
    plt.close(fig)
