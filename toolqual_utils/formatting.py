"""Numbers and cells formatted for people: the one place that decides how a report writes a number.

Pure module: standard library and pandas only (no plotting, no IPython), so every rule here is tested
without a kernel and used the same way by tables, headlines and the HTML renderer.

Rules (what a reader of the reports sees):

- **percentages** with sensible digits (:func:`percent`): ``31%`` between 10% and 90%, one decimal
  below 10% and above 90% (``4.2%``, ``95.3%``), ``<0.1%`` / ``>99.9%`` for values that would round
  to 0 or 100 but are not, and exactly ``0%`` / ``100%`` only when they are;
- **intervals** as ``12% (8–17)`` (:func:`interval`): the bounds take the point estimate's digits;
- **counts** with thousands separators (``1,680``; :func:`count`), never ``1680.0``;
- **other numbers** never in scientific notation (:func:`number`): ``1.38``, ``0.0031``, ``9,264,723``;
  a value indistinguishable from 0 (``1.7e-18``, rounding noise) is ``0``;
- **missing values** are ``–`` (:data:`MISSING`), never ``nan``/``None``/blank;
- **labels** 1 / 0 / missing are the words ``holds`` / ``error`` / ``unscored`` (:func:`label_word`),
  so an unscored verdict is a visible category and never a blank cell.

:class:`Details` is a table cell with a short visible text and longer material behind a disclosure
(``<details>``) — evidence JSON, id lists, prompts; :mod:`toolqual_utils.notebook` renders it.
"""
from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from .verdicts import is_missing  # the one test of a missing value (shown as a dash here)

__all__ = [
    "MISSING", "UNSCORED", "HOLDS", "ERROR", "Details",
    "is_missing", "percent", "percent_range", "interval", "count", "number", "pvalue", "points", "usd", "share",
    "label_word", "evidence_text", "evidence_cell", "collapsed_list", "cell_text", "is_percent_column",
    "format_frame",
]

#: What a missing value looks like in every table.
MISSING: Final = "–"
#: The label words (1, 0, missing).
HOLDS: Final = "holds"
ERROR: Final = "error"
UNSCORED: Final = "unscored"

_ZERO = 1e-12  # below this a float is rounding noise, shown as 0


@dataclass(frozen=True)
class Details:
    """A cell (or block) whose long material is collapsed: ``summary`` is visible, ``body`` opens on demand.

    Attributes:
        summary: the short visible text (e.g. readable evidence, "12 ids").
        body: the long text behind the disclosure (e.g. the evidence JSON); shown pre-formatted.
        label: the disclosure's own label (default "details").
    """

    summary: str
    body: str
    label: str = "details"

    def __str__(self) -> str:  # what plain-text consumers (CSV, tests) see
        return self.summary


def _as_float(value: Any) -> float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _percent_digits(value: float) -> int:
    """Decimals for a percentage value ``value`` (already × 100)."""
    if value == 0 or value == 100:
        return 0
    magnitude = abs(value)
    return 0 if 10 <= magnitude <= 90 else 1


def _percent_number(value: float, digits: int) -> str:
    """``value`` (× 100 already) with ``digits`` decimals, never rounding a non-0/100 value onto 0 or 100."""
    if abs(value) < _ZERO * 100:
        return "0"
    text = f"{value:,.{digits}f}"
    if digits and float(text.replace(",", "")) == 0:
        return f"<{10 ** -digits:.{digits}f}" if value > 0 else f"−<{10 ** -digits:.{digits}f}"
    if 99 < value < 100 and float(text.replace(",", "")) >= 100:
        return f">{100 - 10 ** -max(digits, 1):.{max(digits, 1)}f}"
    if digits == 0 and 0 < value < 1:
        return "<1"
    return text.replace("-", "−")


def percent(value: Any, *, digits: int | None = None) -> str:
    """A share in [0, 1] (or beyond, e.g. a difference) as a percentage with sensible digits.

    ``0.314`` -> ``"31%"``, ``0.042`` -> ``"4.2%"``, ``0.0003`` -> ``"<0.1%"``, ``1.0`` -> ``"100%"``,
    ``0.9996`` -> ``">99.9%"``, NaN -> ``"–"``. ``digits`` forces the number of decimals.
    """
    x = _as_float(value)
    if x is None or math.isinf(x):
        return MISSING
    scaled = 100 * x
    return _percent_number(scaled, _percent_digits(scaled) if digits is None else digits) + "%"


def interval(value: Any, low: Any, high: Any, *, as_percent: bool = True, digits: int | None = None,
             n: Any = None) -> str:
    """``"12% (8–17)"``: a point estimate with its interval, the bounds in the estimate's digits.

    Args:
        value, low, high: the estimate and its bounds (shares in [0, 1] when ``as_percent``).
        as_percent: percentages (default) or plain numbers with two decimals (``"0.74 (0.60–0.85)"``,
            for F1, kappa, pass rates read as fractions).
        digits: force the decimals.
        n: optional sample size, appended as ``" n=1,248"``.

    A missing estimate gives ``"–"``; missing bounds are left out.
    """
    x = _as_float(value)
    n_text = "" if _as_float(n) is None else f" n={count(n)}"
    if x is None:
        return MISSING + n_text
    lo, hi = _as_float(low), _as_float(high)
    if as_percent:
        scaled = 100 * x
        d = digits
        if d is None:
            d = _percent_digits(scaled)
            if scaled in (0, 100):  # take the digits of the informative bound
                other = (hi if scaled == 0 else lo)
                d = _percent_digits(100 * other) if other is not None else 0
        text = _percent_number(scaled, d if scaled not in (0, 100) else 0) + "%"
        if lo is not None and hi is not None:
            bounds = [_percent_number(100 * b, d if 100 * b not in (0, 100) else 0) for b in (lo, hi)]
            text += f" ({bounds[0]}–{bounds[1]})"
    else:
        d = 2 if digits is None else digits
        text = number(x, digits=d)
        if lo is not None and hi is not None:
            text += f" ({number(lo, digits=d)}–{number(hi, digits=d)})"
    return text + n_text


def percent_range(low: Any, high: Any) -> str:
    """A range of shares as ``"5.6–93.0%"`` (one ``%`` sign; ``"12%"`` when both ends are equal)."""
    lo, hi = _as_float(low), _as_float(high)
    if lo is None or hi is None:
        return MISSING
    if percent(lo) == percent(hi):
        return percent(lo)
    return f"{percent(lo)[:-1]}–{percent(hi)}"


def count(value: Any) -> str:
    """An integer count with thousands separators (``1,680``); missing -> ``"–"``."""
    x = _as_float(value)
    if x is None:
        return MISSING
    return f"{int(round(x)):,}"


def number(value: Any, *, digits: int | None = None) -> str:
    """Any number for reading: integers with separators, decimals without scientific notation.

    Sensible digits by magnitude (unless ``digits`` is given): ``9264723`` -> ``"9,264,723"``,
    ``1.378`` -> ``"1.38"``, ``0.003077`` -> ``"0.0031"``, ``1.735e-18`` -> ``"0"``, ``-0.2134`` -> ``"−0.21"``.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    x = _as_float(value)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) < _ZERO:
        return "0" if digits is None else f"{0:.{digits}f}"
    if digits is None:
        if float(x).is_integer():
            return f"{int(x):,}".replace("-", "−")
        magnitude = abs(x)
        if magnitude >= 100:
            digits = 0
        elif magnitude >= 1:
            digits = 2
        else:  # two significant digits, at most 4 decimals
            digits = min(4, max(2, 1 - math.floor(math.log10(magnitude))))
    text = f"{x:,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return f"<{10 ** -digits:.{digits}f}" if x > 0 else f"−<{10 ** -digits:.{digits}f}" if digits else "0"
    return text.replace("-", "−")


def pvalue(value: Any) -> str:
    """A p-value: ``"0.26"``, ``"0.012"``, ``"<0.001"``; missing -> ``"–"``."""
    x = _as_float(value)
    if x is None:
        return MISSING
    if x < 0.001:
        return "<0.001"
    return f"{x:.3f}" if x < 0.01 else f"{x:.2f}"


def points(value: Any, *, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed: ``"+6.0 pts"``, ``"−8.0 pts"``."""
    x = _as_float(value)
    if x is None:
        return MISSING
    scaled = 100 * x
    if abs(scaled) < 10 ** -digits / 2:
        return f"{0:.{digits}f} pts"
    return f"{scaled:+.{digits}f} pts".replace("-", "−")


def usd(value: Any) -> str:
    """An amount in US dollars: ``"$7.73"``, ``"$1,234"``, ``"<$0.01"``."""
    x = _as_float(value)
    if x is None:
        return MISSING
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        return "<$0.01"
    return f"${x:,.0f}" if abs(x) >= 1000 else f"${x:,.2f}"


def share(part: Any, whole: Any) -> str:
    """``"612 of 1,680 (36%)"``; ``"0 of 0"`` when there is nothing to share."""
    k, n = _as_float(part), _as_float(whole)
    if k is None or n is None:
        return MISSING
    text = f"{count(k)} of {count(n)}"
    return text + (f" ({percent(k / n)})" if n else "")


def label_word(value: Any) -> str:
    """A criterion label as a word: 1 -> ``"holds"``, 0 -> ``"error"``, missing -> ``"unscored"``."""
    x = _as_float(value)
    if x is None:
        return UNSCORED
    return HOLDS if x == 1 else ERROR if x == 0 else str(value)


# --- evidence and long material --------------------------------------------------------------------

#: Evidence keys in reading order, with how each is introduced (others follow as "key: value").
_EVIDENCE_KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("check", ""), ("heuristic", ""), ("call_index", "call "), ("tool", "tool "),
    ("argument", "argument "), ("parameter", "argument "), ("value", "value "), ("expected", "expected "),
    ("missing", "missing: "), ("pair_index", "pair "), ("follows", "follows: "), ("message", ""),
)
_SKIP_KEYS: Final = frozenset({"severity", "function", "call"})


def _short(value: Any, limit: int) -> str:
    if isinstance(value, str):
        text = repr(value) if len(value) <= limit else repr(value[: limit - 1] + "…")
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, ensure_ascii=False, default=str)
        text = text if len(text) <= limit else text[: limit - 1] + "…"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, numbers.Number):
        text = number(value)
    else:
        text = str(value)
    return text


def _item_line(item: Mapping[str, Any], limit: int, skip_text: str) -> str:
    parts, message = [], ""
    known = {key for key, _ in _EVIDENCE_KEYS}
    for key, prefix in _EVIDENCE_KEYS:
        if key not in item or is_missing(item[key]) or item[key] == "":
            continue
        if key == "message":
            message = str(item[key])
        elif key in ("check", "heuristic"):
            parts.append(str(item[key]))
        elif key == "call_index":
            name = item.get("function") or item.get("call")
            parts.append(f"call {item[key]}" + (f" ({name})" if isinstance(name, str) and name else ""))
        elif key == "pair_index":
            parts.append(f"{prefix}{item[key]}")
        else:
            parts.append(f"{prefix}{_short(item[key], limit)}")
    for key, value in item.items():
        if key not in known and key not in _SKIP_KEYS and not is_missing(value) and value != "":
            parts.append(f"{key}: {_short(value, limit)}")
    line = " · ".join(parts)
    if message and message.strip() not in skip_text:
        message = message if len(message) <= 2 * limit else message[: 2 * limit - 1] + "…"
        line = f"{line} — {message}" if line else message
    return line


def evidence_text(evidence: Any, *, limit: int = 60, max_items: int = 3, skip_text: str = "") -> str:
    """Evidence items (check, call, argument, value, expected, message) as readable lines.

    Args:
        evidence: a list of evidence dicts (or a JSON string of one, or one dict); anything else is shown
            as text.
        limit: longest value shown in full (longer values are cut with ``…``; the JSON has them whole).
        max_items: items listed before ``"… and N more"``.
        skip_text: text already shown beside the evidence (the rationale): an item's message contained in
            it is not repeated.

    Returns:
        One line per item, e.g. ``"unknown_function · call 0 (x) · expected ['a', 'b'] — call 0 names 'x',
        which is not among the offered tools"``; ``""`` for no evidence.
    """
    items = evidence
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            return items
    if is_missing(items) or items == []:
        return ""
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, (list, tuple)):
        return str(items)
    lines = [_item_line(item, limit, skip_text) if isinstance(item, Mapping) else _short(item, limit)
             for item in list(items)[:max_items]]
    if len(items) > max_items:
        lines.append(f"… and {len(items) - max_items} more")
    return "\n".join(line for line in lines if line)


def evidence_cell(evidence: Any, *, skip_text: str = "") -> Details | str:
    """Readable evidence with the full JSON behind a disclosure (``""`` when there is none)."""
    text = evidence_text(evidence, skip_text=skip_text) or ("(see JSON)" if evidence_text(evidence) else "")
    if not text:
        return ""
    items = evidence
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            return text
    return Details(text, json.dumps(items, ensure_ascii=False, indent=1, default=str), label="JSON")


def collapsed_list(values: Iterable[Any], *, noun: str = "id", shown: int = 0) -> Details | str:
    """A list of ids (or any strings) as ``"12 ids"`` with the full list behind a disclosure.

    ``shown`` items are listed in the visible text before the count (``"a, b, … (12 ids)"``).
    """
    items = [str(v) for v in values]
    if not items:
        return MISSING
    plural = noun if len(items) == 1 else (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")
    label = f"{count(len(items))} {plural}"
    if len(items) <= max(shown, 1) and len(items[0]) <= 60:
        return ", ".join(items)
    visible = ", ".join(items[:shown]) + (f", … ({label})" if shown else "") if shown else label
    return Details(visible, "\n".join(items), label="list")


# --- whole tables ---------------------------------------------------------------------------------


def is_percent_column(name: Any) -> bool:
    """Columns holding shares in [0, 1] by their name: ``share``, ``share_*``, ``*_share``, ``*_rate``,
    ``rate``, ``*_rate_*`` — the report writes them as percentages."""
    text = str(name).lower()
    return (text in ("share", "rate", "error_rate", "pass_rate") or text.startswith("share_")
            or text.endswith(("_share", "_rate")) or "_rate_" in text)


def cell_text(value: Any, *, as_percent: bool = False, max_chars: int = 0) -> str:
    """One cell's text by the rules above (dicts and lists as compact JSON; cut at ``max_chars``)."""
    if isinstance(value, Details):
        text = value.summary
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif is_missing(value):
        return MISSING
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, numbers.Number) and not isinstance(value, complex):
        text = percent(value) if as_percent else number(value)
    else:
        text = str(value)
        if not text.strip():
            return MISSING
    if max_chars and len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


def format_frame(frame: pd.DataFrame, *, percent_columns: Sequence[str] = (),
                 auto_percent: bool = True) -> pd.DataFrame:
    """Every cell of ``frame`` as display text (index kept): numbers, percentages, missing values.

    Columns named in ``percent_columns`` (or recognised by :func:`is_percent_column` when
    ``auto_percent``) are shares written as percentages. Use it before transposing a table, so that a
    row of counts and a row of shares each keep their format.
    """
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        as_pct = column in percent_columns or (auto_percent and is_percent_column(column))
        out[column] = [cell_text(v, as_percent=as_pct) if not isinstance(v, Details) else v
                       for v in frame[column]]
    return out
