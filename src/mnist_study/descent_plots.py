"""Notebook 09's figure: the training loss of gradient descents against the work each has done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_loss_curves"]


def plot_loss_curves(
    histories: Mapping[str, np.ndarray],
    images_per_update: Mapping[str, int],
    endpoints: Mapping[str, tuple[float, float, float]],
    axes: Sequence[plt.Axes],
) -> None:
    """The loss against images processed (``axes[0]``) and against weight updates (``axes[1]``).

    ``histories`` maps a method to rows of (images processed, loss), its first row the start;
    ``images_per_update`` gives its images per weight update. ``endpoints`` maps a method with no
    recorded curve to (images processed, weight updates, final loss), drawn as one marker.
    Both x axes are logarithmic, so the start (zero images) is drawn as a dotted level.
    """
    start = next(iter(histories.values()))[0, 1]
    for ax, per_update in zip(axes, (False, True), strict=True):
        for name, history in histories.items():
            images, loss = history[1:, 0], history[1:, 1]
            x = images / images_per_update[name] if per_update else images
            ax.plot(x, loss, label=name, linewidth=1.5)
        for (name, (images, updates, loss)), marker in zip(endpoints.items(), "Ds", strict=False):
            ax.plot(updates if per_update else images, loss, marker, color="black", label=name)
        ax.axhline(start, color="grey", linestyle=":", linewidth=1, label="start (all weights 0)")
        ax.set_xscale("log")
        ax.set_xlabel("weight updates" if per_update else "images processed")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss (log loss)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
