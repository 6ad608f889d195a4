"""How the study's figures look and are written: one style, and the README figures' exporter.

``use_study_style`` fixes the defaults every notebook draws with (and PNGs without version
metadata, so a re-run writes the same bytes); ``save_readme_figure`` writes a figure for the
README, refusing one whose text GitHub would show too small to read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.text import Text
from PIL import Image

__all__ = [
    "MIN_TEXT_PX",
    "PNG_METADATA",
    "README_WIDTH_PX",
    "FigureFolderError",
    "save_readme_figure",
    "smallest_text_pt",
    "use_study_style",
]

# No software version, date or path in the files, so a re-run writes the same bytes.
PNG_METADATA = {"Software": None}
README_DPI = 120
# GitHub shows a README image at most this wide; no text may come out smaller than MIN_TEXT_PX.
README_WIDTH_PX = 880
MIN_TEXT_PX = 9


def use_study_style() -> None:
    """Consistent, deterministic figure defaults for notebooks and exported PNGs."""
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": README_DPI,
            "savefig.bbox": "tight",
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "mnist-study",
        }
    )
    with contextlib.suppress(ImportError):  # figures shown in a notebook: no version metadata
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png", metadata=PNG_METADATA)


def smallest_text_pt(fig: plt.Figure) -> float:
    """The font size in points of the smallest text drawn in ``fig`` (titles, ticks, labels…)."""
    hidden = set()
    for ax in fig.axes:
        if not ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                hidden |= {id(t) for t in [*axis.get_ticklabels(which="both"), axis.label]}
    sizes = [
        text.get_fontsize()
        for text in fig.findobj(Text)
        if text.get_visible() and text.get_text().strip() and id(text) not in hidden
    ]
    return min(sizes)


class FigureFolderError(OSError):
    """The folder named for the figures is a file, or cannot be written."""


def save_readme_figure(fig: plt.Figure, name: str, figure_dir: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as ``figure_dir/name`` (PNG, fixed metadata), atomically; return the path.

    Refuses a figure whose smallest text would be under ``MIN_TEXT_PX`` pixels once GitHub has
    scaled it to the README's width, so that every exported figure stays readable there.
    """
    if not name.endswith(".png"):
        raise ValueError(f"README figures are PNG files; got {name!r}")
    directory = Path(figure_dir)
    target = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise FigureFolderError(
            f"cannot write {name} into the figure folder {directory} ({error.strerror}): set "
            "figure_dir in the notebook's parameters cell to a folder that can be written"
        ) from None
    os.close(handle)
    try:
        fig.savefig(temporary, format="png", metadata=PNG_METADATA)
        with Image.open(temporary) as image:
            width = image.width
        dpi = mpl.rcParams["savefig.dpi"]
        dpi = fig.dpi if dpi == "figure" else dpi
        shown_px = smallest_text_pt(fig) * dpi / 72 * min(1.0, README_WIDTH_PX / width)
        if shown_px < MIN_TEXT_PX:
            raise ValueError(
                f"{name}: its smallest text would be {shown_px:.1f} px high at the README's width "
                f"({README_WIDTH_PX} px, the image is {width} px wide); make the figure narrower "
                f"or its text larger (at least {MIN_TEXT_PX} px)"
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
