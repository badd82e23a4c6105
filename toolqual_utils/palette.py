"""The one set of colours every figure uses: interactive (plotly) pages and static (matplotlib) figures.

Pure module (no plotting library imported): colours are plain hex strings.

- :data:`CRITERION_COLOURS`: one colour per intrinsic criterion, the same on every page and in every
  exported figure. The six are the chromatic colours of the Okabe–Ito palette (Okabe & Ito, "Color
  Universal Design", 2008), chosen to stay distinct for the common forms of colour blindness
  (deuteranopia, protanopia, tritanopia); the three coarse labels are dark neutrals.
- :data:`STATUS_COLOURS`: error / holds / unscored. **Unscored is always the same grey** and always has
  its own legend entry.
- :data:`SERIES_COLOURS`: for anything that is not a criterion (sources, judges, recipes, runs): Paul
  Tol's "muted" scheme, also colour-blind safe and distinct in hue from the criterion colours' roles.
- :data:`SEQUENTIAL_SCALE`: for heatmaps (cividis, designed to be read the same with colour blindness).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "CRITERION_COLOURS", "STATUS_COLOURS", "SERIES_COLOURS", "REFERENCE_COLOUR", "UNSCORED_GREY",
    "SEQUENTIAL_SCALE", "MATPLOTLIB_SEQUENTIAL", "criterion_colour", "series_colour", "with_alpha",
]

#: Okabe–Ito: orange, sky blue, bluish green, yellow, blue, vermillion; reddish purple and dark
#: neutrals for the coarse labels.
CRITERION_COLOURS: Final = {
    "specificity": "#E69F00",
    "coherence": "#56B4E9",
    "solvability": "#009E73",
    "parameter_alignment": "#0072B2",
    "sufficiency": "#D55E00",
    "minimality": "#CC79A7",
    "instruction_ok": "#5B5B5B",
    "sequence_ok": "#3A3A3A",
    "overall_ok": "#000000",
}
#: The grey of every unscored segment, cell and legend entry.
UNSCORED_GREY: Final = "#BDBDBD"
STATUS_COLOURS: Final = {"error": "#B2182B", "holds": "#9ECAE1", "unscored": UNSCORED_GREY}
#: Paul Tol's "muted" qualitative scheme (sources, judges, recipes, runs).
SERIES_COLOURS: Final = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
)
#: Numbers quoted from the paper (never a result on the user's data): open dark-grey diamonds.
REFERENCE_COLOUR: Final = "#444444"
#: Plotly colour scale name and matplotlib colormap name for heatmaps.
SEQUENTIAL_SCALE: Final = "cividis"
MATPLOTLIB_SEQUENTIAL: Final = "cividis"

_LABEL_TO_KEY: Final = {
    "parameter alignment": "parameter_alignment", "instruction correctness": "instruction_ok",
    "sequence correctness": "sequence_ok", "overall correctness (any error)": "overall_ok",
    "overall correctness": "overall_ok", "any error": "overall_ok",
}


def criterion_colour(criterion: str) -> str:
    """The colour of a criterion, by key (``parameter_alignment``) or display label
    (``parameter alignment``); unknown names get the reference grey."""
    key = _LABEL_TO_KEY.get(str(criterion), str(criterion))
    return CRITERION_COLOURS.get(key, REFERENCE_COLOUR)


def series_colour(index: int, palette: Sequence[str] = SERIES_COLOURS) -> str:
    """The ``index``-th series colour (cycling)."""
    return palette[index % len(palette)]


def with_alpha(colour: str, alpha: float) -> str:
    """``"#RRGGBB"`` -> ``"rgba(r,g,b,alpha)"`` (for lighter fills of the same hue)."""
    value = colour.lstrip("#")
    red, green, blue = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha:g})"
