"""Deterministic checks of the gold call sequence, and the rule verdicts they imply.

Each check is tied to one intrinsic criterion (docs/method.md, docs/annotation_guide.md) and leaves evidence: which
check, which call, which argument, which value, what was expected. A finding has a *severity*:

- ``error``: the rule is reliable on its own; the criterion gets label 0 (status ``ok``, "decided").
- ``suspect``: worth a look but not reliable alone (e.g. a value only partly found in the instruction);
  the criterion stays ``unscored:needs-model`` and the finding travels as evidence to the model judge.

Checks (criterion in brackets):

============================= ==================== ===========================================================
check                         criterion            fires when
============================= ==================== ===========================================================
unknown_function              sufficiency          a call names an API the instance does not offer (it cannot
                                                   serve the request it stands for)
no_call_for_request           sufficiency          ``calls == []`` although the instruction asks for something
                                                   (BFCL ``irrelevance`` instances, and instances offering no
                                                   tool at all, are exempt: no call is right)
irrelevance_by_design         solvability          BFCL ``irrelevance``: by construction no offered tool serves
                                                   the request
unparseable_arguments         parameter_alignment  argument text that is not JSON and not repairable
placeholder_value             parameter_alignment  a literal placeholder is passed: a type name ("string"), a
                                                   template (``<name>``, ``{x}``, ``${some permission}``), the
                                                   parameter's own name ("country" for ``country``), or a vague
                                                   phrase ("specific actor", "a certain year")
missing_required_parameter    parameter_alignment  a required parameter is absent
empty_required_value          parameter_alignment  a required parameter is ``None``, ``""`` or empty
unexpected_parameter          parameter_alignment  an argument the tool's schema does not define (``suspect``
                                                   when the schema lists no parameters at all: ToolBench lost
                                                   optional ones upstream)
type_mismatch                 parameter_alignment  a value of the wrong JSON type (lenient, see below)
enum_mismatch                 parameter_alignment  a value outside the schema's ``enum`` (or ToolAlpaca's
                                                   "One of: [...]" in the description), case-insensitive
ungrounded_value              parameter_alignment  a value not supported by the instruction, an earlier
                                                   observation, a reference or an exemption (``error`` when
                                                   nothing of it appears, or it is the schema's own example;
                                                   ``suspect`` when partly found or an unresolved short code,
                                                   number or date)
repeated_identical_call       minimality           a call identical (name + arguments) to an earlier one
identical_retry_after_error   minimality           the same, right after that earlier call failed
============================= ==================== ===========================================================

Type leniency (decided here, documented): ``int`` is a ``number``; integral floats and numeric strings are
accepted for ``integer``/``number`` (many APIs take query strings); scalars are accepted for ``string``;
``"true"``/``"false"``/0/1 for ``boolean``; a list for a ``string`` parameter only when its description says
array/list. Everything else of the wrong JSON type is a ``type_mismatch``.

Grounding exemptions (never ``ungrounded_value``): credentials (parameter names such as ``api_key``,
``access_key``, ``appid``, ``token``, or the value/description ``<REDACTED_CREDENTIAL>``); the schema's
default; booleans; the integers 0 and 1 (flags, first page); the only value of a one-value enum; values with
no content words ("all", "any"); values seen in an earlier call's observation, in an earlier call's
arguments or in a pseudo-call, or in an earlier turn of the dialogue (what the user said, tool results); references to earlier outputs (``API_call_1``, ``${x from f}``); dates when the
instruction speaks of relative time ("next year", "past three months"). Matching normalises casing, quotes,
whitespace and punctuation, numbers (``"5"``, ``5``, ``5.0``, ``"five"``, ``"1,000"``), dates in several
formats (``2023-04-15``, ``04/15/2023``, ``April 15th, 2023``, ``15 April 2023``), and country, language,
currency and US-state names to their codes (``Germany`` -> ``DE``).

Pure module: standard library, pandas and rapidfuzz; no I/O.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import pandas as pd
from rapidfuzz import fuzz

from .dialogue import earlier_outputs, user_text
from .matching import standardize_string
from .schema import PSEUDO_CALLS, SEQUENCE_CRITERIA, VERDICT_COLUMNS, Instance

__all__ = [
    "CHECKS", "FINDING_COLUMNS", "RULE_CRITERIA", "RULES_JUDGE", "RULES_PROMPT_ID", "Finding",
    "check_findings", "check_flags", "find_issues", "run_checks",
]

RULES_JUDGE: Final = "rules"
RULES_PROMPT_ID: Final = "rules.v1"
Severity = Literal["error", "suspect"]

#: check name -> (criterion, one-line description). Flag columns are ``is_<check>_issue``.
CHECKS: Final[dict[str, tuple[str, str]]] = {
    "unknown_function": ("sufficiency", "call to an API the instance does not offer"),
    "no_call_for_request": ("sufficiency", "no call although the instruction makes a request"),
    "irrelevance_by_design": ("solvability", "BFCL irrelevance: no offered tool serves the request"),
    "unparseable_arguments": ("parameter_alignment", "arguments are not valid JSON"),
    "placeholder_value": ("parameter_alignment", "a placeholder literal is passed as a value"),
    "missing_required_parameter": ("parameter_alignment", "a required parameter is missing"),
    "empty_required_value": ("parameter_alignment", "a required parameter is empty or None"),
    "unexpected_parameter": ("parameter_alignment", "an argument the schema does not define"),
    "type_mismatch": ("parameter_alignment", "a value of the wrong type"),
    "enum_mismatch": ("parameter_alignment", "a value outside the allowed values"),
    "ungrounded_value": ("parameter_alignment", "a value not supported by the instruction or earlier outputs"),
    "repeated_identical_call": ("minimality", "a call repeated identically"),
    "identical_retry_after_error": ("minimality", "a failed call retried identically"),
}

#: Criteria the rules give a verdict row for (one row per instance x criterion).
RULE_CRITERIA: Final = ("solvability", "parameter_alignment", "sufficiency", "minimality")

FINDING_COLUMNS: Final = (
    "instance_id", "check", "criterion", "severity", "call_index", "function", "argument", "value",
    "expected", "message",
)


@dataclass(frozen=True)
class Finding:
    """One fired check. ``call_index`` is 0-based over ``instance.calls`` (None for instance-level checks)."""

    instance_id: str
    check: str
    severity: Severity
    message: str
    call_index: int | None = None
    function: str | None = None
    argument: str | None = None
    value: Any = None
    expected: Any = None

    @property
    def criterion(self) -> str:
        return CHECKS[self.check][0]

    def evidence(self) -> dict[str, Any]:
        """JSON-serialisable evidence dict for the verdict table."""
        record: dict[str, Any] = {"check": self.check, "severity": self.severity}
        if self.call_index is not None:
            record["call_index"] = self.call_index
        if self.function is not None:
            record["function"] = self.function
        if self.argument is not None:
            record["argument"] = self.argument
        if self.value is not None:
            record["value"] = _jsonable(self.value)
        if self.expected is not None:
            record["expected"] = _jsonable(self.expected)
        record["message"] = self.message
        return record


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- text normalisation -------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%|k\b)?", re.IGNORECASE)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "half": 0.5,
    "single": 1, "once": 1, "twice": 2, "double": 2, "triple": 3, "first": 1, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "tenth": 10, "a": 1, "an": 1, "couple": 2, "pair": 2,
}
_STOPWORDS = frozenset(
    "a an the of for to in on at by from with and or is are be as it its this that these those me my i we "
    "our you your please can could would will shall should do does did get find show give tell list all any "
    "some about into over under than then also just what which who whom how when where why there here not no "
    "yes if so up down out new".split()
)
_STOPWORDS = _STOPWORDS - {"new"}  # "New York": keep "new" as content
_RELATIVE_TIME = re.compile(
    r"\b(today|tomorrow|yesterday|tonight|now|current(ly)?|upcoming|latest|recent(ly)?|this (week|month|year)"
    r"|next|last|past|previous|ago|coming|weekend|soon|within|since|until|later|earlier|future|week|month|"
    r"year|days?|quarter|season)\b"
)
_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = (
    # 2023-04-15, 2023/04/15, 2023.04.15, 20230415
    (re.compile(r"\b(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})\b"), ("y", "m", "d")),
    # 04/15/2023, 04-15-2023 (US first); 15/04/2023 tried too when the day is > 12
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b"), ("m", "d", "y")),
    # April 15th, 2023 / Apr 15 2023 / April 15
    (re.compile(rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b", re.I), ("M", "d", "y")),
    # 15 April 2023 / 15th of April, 2023
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_ALT})\.?(?:,?\s+(\d{{4}}))?\b", re.I), ("d", "M", "y")),
)

#: Cheap pre-check before the date patterns: digit-separator-digit, or a digit next to a month name.
_DATE_HINT = re.compile(rf"\d[-/.]\d|\d{{8}}|({_MONTH_ALT})\.?\s*\d|\d\s*(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_ALT})", re.I)

_CREDENTIAL_NAME = re.compile(
    r"(^|_)(api_?key|apikey|api_?token|access_?key|access_?token|secret(_?key)?|token|auth(_?token)?|"
    r"authorization|app_?id|appid|app_?key|password|passwd|client_?(id|secret)|rapidapi_?key|x_rapidapi_key|"
    r"key|license_?key|subscription_?key|bearer)$"
)
_REFERENCE_RE = re.compile(
    r"^\s*(api_call_\d+(\.\w+)*|\$\{[^}]*\bfrom\b[^}]*\}|\$\w+|\{\{[^}]*\bfrom\b[^}]*\}\}|"
    r"<[^>]*\bfrom\b[^>]*>|@\w+)\s*$",
    re.IGNORECASE,
)
_TEMPLATE_RE = re.compile(r"\$\{[^}]*\}|\{\{[^}]*\}\}")
_PLACEHOLDER_WORDS = frozenset(
    "string str integer int number float double boolean bool object array dict null nil undefined "
    "n/a tbd todo xxx xxxx placeholder your_value insert_value dummy lorem ipsum ... ? ??".split()
)
_VAGUE_RE = re.compile(
    r"^(a |an |the )?(specific|certain|particular|given|some|insert|enter|your|specified|desired|"
    r"unknown|any given)\b\s*\w*", re.IGNORECASE
)
_ERROR_OBSERVATION = re.compile(
    r"(\"error\"\s*:\s*\"[^\"]+\"|'error'\s*:\s*'[^']+'|status code:\s*[45]\d\d|internal server error|"
    r"\btimed? ?out\b|\bexception\b|\bnot found\b|\bdoes not exist\b|\binvalid\b|\bunauthori[sz]ed\b|"
    r"\bforbidden\b|\brate limit|\bfailed\b)",
    re.IGNORECASE,
)
_ONE_OF_RE = re.compile(r"one of:?\s*\[([^\]]*)\]", re.IGNORECASE)
_EXAMPLE_RE = re.compile(r"(?:e\.g\.|for example|for instance|such as|example:)\s*,?\s*([^;)]*)", re.IGNORECASE)
_ARRAY_HINT = re.compile(r"\b(array|list|comma[- ]separated|multiple)\b", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _norm(text: str) -> str:
    """Lower-case, every run of non-alphanumerics -> one space, padded with spaces for word lookups."""
    return " " + _NON_ALNUM.sub(" ", text.translate(_QUOTES).lower()).strip() + " "


def _compact(text: str) -> str:
    return _NON_ALNUM.sub("", text.lower())


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("sses", "shes", "ches", "xes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def _numbers_in(text: str) -> set[float]:
    numbers: set[float] = set()
    for match in _NUMBER_RE.finditer(text):
        whole = float(match.group(1).replace(",", "") + (match.group(2) or ""))
        numbers.add(whole)
        suffix = (match.group(3) or "").lower()
        if suffix == "%":
            numbers.add(whole / 100)
        elif suffix == "k":
            numbers.add(whole * 1000)
    return numbers


def _dates_in(text: str) -> set[tuple[int | None, int, int]]:
    dates: set[tuple[int | None, int, int]] = set()
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            parts = dict(zip(order, match.groups()))
            try:
                month = _MONTHS[parts["M"].lower()] if "M" in parts else int(parts["m"])
                day = int(parts["d"])
                year = int(parts["y"]) if parts.get("y") else None
            except (KeyError, TypeError, ValueError):
                continue
            if year is not None and year < 100:
                year += 2000
            for m, d in ((month, day), (day, month)):
                if 1 <= m <= 12 and 1 <= d <= 31:
                    dates.add((year, m, d))
                    dates.add((None, m, d))
    return dates


# Codes a sensible assistant infers from names ("Germany" -> DE). Small, common tables; extend as needed.
_CODES: Final[dict[str, tuple[str, ...]]] = {}


def _add_codes(table: str) -> None:
    for entry in table.strip().split(";"):
        names, codes = entry.split(":")
        for code in codes.split(","):
            _CODES.setdefault(code.strip().lower(), ())
            _CODES[code.strip().lower()] += tuple(n.strip().lower() for n in names.split("|"))


_add_codes(
    "united states|usa|america|us|american:us,usa;united kingdom|uk|britain|england|british:gb,uk,gbr;"
    "germany|german:de,deu;france|french:fr,fra;spain|spanish:es,esp;italy|italian:it,ita;japan|japanese:jp,jpn,ja;"
    "china|chinese:cn,chn,zh;india|indian:in,ind;canada|canadian:ca,can;australia|australian:au,aus;"
    "brazil|brazilian:br,bra;mexico|mexican:mx,mex;russia|russian:ru,rus;south korea|korea|korean:kr,kor,ko;"
    "netherlands|dutch|holland:nl,nld;sweden|swedish:se,swe,sv;norway|norwegian:no,nor,nb;denmark|danish:dk,dnk,da;"
    "finland|finnish:fi,fin;poland|polish:pl,pol;portugal|portuguese:pt,prt;switzerland|swiss:ch,che;"
    "austria|austrian:at,aut;belgium|belgian:be,bel;ireland|irish:ie,irl;greece|greek:gr,grc,el;"
    "turkey|turkish:tr,tur;egypt|egyptian:eg,egy;south africa:za,zaf;nigeria:ng,nga;kenya:ke,ken;"
    "argentina:ar,arg;chile:cl,chl;colombia:co,col;peru:pe,per;new zealand:nz,nzl;singapore:sg,sgp;"
    "indonesia|indonesian:id,idn;thailand|thai:th,tha;vietnam|vietnamese:vn,vnm,vi;philippines:ph,phl;"
    "malaysia:my,mys;israel|hebrew:il,isr,he;saudi arabia|arabic:sa,sau,ar;united arab emirates|uae:ae,are;"
    "ukraine|ukrainian:ua,ukr,uk;czech:cz,cze,cs;hungary|hungarian:hu,hun;romania|romanian:ro,rou;"
    "new caledonia:nc,ncl;english:en,eng;hindi:hi;"
    "dollar|dollars|usd|us dollar:usd;euro|euros:eur;pound|pounds|sterling:gbp;yen:jpy;yuan|renminbi:cny,rmb;"
    "rupee|rupees:inr;franc|francs:chf;canadian dollar:cad;australian dollar:aud;bitcoin:btc;ethereum:eth;"
    "alabama:al;alaska:ak;arizona:az;arkansas:ar;california:ca;colorado:co;connecticut:ct;delaware:de;"
    "florida:fl;georgia:ga;hawaii:hi;idaho:id;illinois:il;indiana:in;iowa:ia;kansas:ks;kentucky:ky;"
    "louisiana:la;maine:me;maryland:md;massachusetts:ma;michigan:mi;minnesota:mn;mississippi:ms;missouri:mo;"
    "montana:mt;nebraska:ne;nevada:nv;new hampshire:nh;new jersey:nj;new mexico:nm;new york:ny;"
    "north carolina:nc;north dakota:nd;ohio:oh;oklahoma:ok;oregon:or;pennsylvania:pa;rhode island:ri;"
    "south carolina:sc;south dakota:sd;tennessee:tn;texas:tx;utah:ut;vermont:vt;virginia:va;washington:wa;"
    "west virginia:wv;wisconsin:wi;wyoming:wy;district of columbia:dc"
)


class _Context:
    """The normalised texts a value can be grounded in; built once per instance, extended per call."""

    __slots__ = ("_numbers", "_dates", "_tokens", "_norm", "_compact", "_relative", "raw", "lower", "earlier")

    def __init__(self, instruction: str) -> None:
        self.raw = instruction
        self.lower = instruction.lower()
        self._norm: str | None = None  # the rest is computed on first use: most values hit the fast path
        self._compact: str | None = None
        self._relative: bool | None = None
        self._numbers: set[float] | None = None
        self._dates: set[tuple[int | None, int, int]] | None = None
        self._tokens: set[str] | None = None
        self.earlier: list[str] = []  # raw texts of earlier observations / arguments (normalised lazily)

    @property
    def norm(self) -> str:
        if self._norm is None:
            self._norm = _norm(self.raw)
        return self._norm

    @property
    def compact(self) -> str:
        if self._compact is None:
            self._compact = _compact(self.raw)
        return self._compact

    @property
    def has_relative_time(self) -> bool:
        if self._relative is None:
            self._relative = _RELATIVE_TIME.search(self.norm) is not None
        return self._relative

    @property
    def numbers(self) -> set[float]:
        if self._numbers is None:
            self._numbers = _numbers_in(self.raw)
            for token in self.norm.split():
                if token in _NUMBER_WORDS:
                    self._numbers.add(float(_NUMBER_WORDS[token]))
        return self._numbers

    @property
    def dates(self) -> set[tuple[int | None, int, int]]:
        if self._dates is None:
            self._dates = _dates_in(self.raw)
        return self._dates

    @property
    def tokens(self) -> set[str]:
        if self._tokens is None:
            self._tokens = {_stem(t) for t in self.norm.split()}
        return self._tokens

    def in_earlier(self, value_norm: str, value_compact: str) -> bool:
        if not self.earlier:
            return False
        for text in self.earlier:
            lowered = text.lower()
            if value_compact and len(value_compact) >= 2 and value_compact in _compact(lowered):
                return True
            if value_norm.strip() and value_norm in _norm(lowered):
                return True
        return False


# --- tool schema helpers (cached: real datasets repeat the same tools across many instances) ---------

@dataclass(frozen=True)
class _ParamInfo:
    kind: str | None
    enum: tuple[str, ...] | None
    default: Any
    has_default: bool
    examples: tuple[str, ...]
    is_credential: bool
    array_hint: bool


def _param_info(name: str, spec: Mapping[str, Any]) -> _ParamInfo:
    description = str(spec.get("description") or "")
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    enum: tuple[str, ...] | None = None
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        enum = tuple(str(v) for v in spec["enum"])
    else:
        found = _ONE_OF_RE.search(description)
        if found:
            options = tuple(o.strip().strip("'\"` ") for o in found.group(1).split(","))
            enum = tuple(o for o in options if o) or None
    examples: list[str] = []
    for match in _EXAMPLE_RE.finditer(description):
        examples.extend(e.strip().strip("'\"`. ") for e in re.split(r",|\bor\b", match.group(1)))
    if spec.get("example_value") not in (None, ""):
        examples.append(str(spec["example_value"]))
    snake = _CAMEL.sub("_", name).lower().replace("-", "_")
    is_credential = bool(_CREDENTIAL_NAME.search(snake)) or "REDACTED_CREDENTIAL" in description
    return _ParamInfo(
        kind=kind if isinstance(kind, str) else None,
        enum=enum,
        default=spec.get("default"),
        has_default="default" in spec,
        examples=tuple(e for e in examples if e),
        is_credential=is_credential,
        array_hint=bool(_ARRAY_HINT.search(description)),
    )


@lru_cache(maxsize=65536)
def _tool_table_cached(key: str) -> tuple[dict[str, _ParamInfo], frozenset[str], bool]:
    parameters = json.loads(key)
    properties = parameters.get("properties") or {}
    infos = {name: _param_info(name, spec if isinstance(spec, Mapping) else {}) for name, spec in properties.items()}
    return infos, frozenset(parameters.get("required") or []), bool(properties)


_BY_IDENTITY: dict[int, tuple[Mapping[str, Any], tuple[dict[str, _ParamInfo], frozenset[str], bool]]] = {}


def _tool_table(parameters: Mapping[str, Any]) -> tuple[dict[str, _ParamInfo], frozenset[str], bool]:
    """Parameter infos of a tool schema; cached by object identity, then by content."""
    hit = _BY_IDENTITY.get(id(parameters))
    if hit is not None and hit[0] is parameters:
        return hit[1]
    table = _tool_table_cached(json.dumps(parameters, sort_keys=True, default=str))
    if len(_BY_IDENTITY) > 65536:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(parameters)] = (parameters, table)  # keeps the object alive, so the id stays unique
    return table


# --- per-value checks -----------------------------------------------------------------------------------

def _is_numeric_string(value: str) -> bool:
    try:
        float(value.replace(",", ""))
        return True
    except ValueError:
        return False


def _type_problem(value: Any, info: _ParamInfo) -> str | None:
    kind = info.kind
    if kind is None or value is None:
        return None
    kind = {"float": "number", "int": "integer", "dict": "object", "tuple": "array", "bool": "boolean",
            "str": "string", "list": "array"}.get(kind, kind)
    if kind == "string":
        if isinstance(value, (str, int, float, bool)):
            return None
        if isinstance(value, list) and info.array_hint:
            return None
    elif kind == "integer":
        if isinstance(value, bool):
            return "expected an integer, got a boolean"
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return None
        if isinstance(value, str) and _is_numeric_string(value) and float(value.replace(",", "")).is_integer():
            return None
    elif kind == "number":
        if isinstance(value, bool):
            return "expected a number, got a boolean"
        if isinstance(value, (int, float)) or (isinstance(value, str) and _is_numeric_string(value)):
            return None
    elif kind == "boolean":
        if isinstance(value, bool) or value in (0, 1) or (isinstance(value, str) and value.lower() in ("true", "false")):
            return None
    elif kind == "array":
        if isinstance(value, (list, tuple)):
            return None
    elif kind == "object":
        if isinstance(value, Mapping):
            return None
    else:
        return None
    return f"expected {kind}, got {type(value).__name__}"


@lru_cache(maxsize=65536)
def _param_words(param: str) -> str:
    return _CAMEL.sub(" ", param).replace("_", " ").lower().strip()


def _placeholder_problem(value: Any, param: str, ctx: _Context, enum: tuple[str, ...] | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    lowered = stripped.lower()
    if not stripped or "REDACTED_CREDENTIAL" in stripped:
        return None
    if enum is not None and any(lowered == e.lower() for e in enum):
        return None
    if stripped[0] in "$@{<" or "api_call" in lowered:
        if _REFERENCE_RE.match(stripped):
            return None
    # A type or parameter name the user actually wrote ("from the format of String") is a value, not a
    # placeholder; vague phrases stay placeholders even when the instruction uses them ("a specific actor").
    def said_by_user() -> bool:
        return _norm(stripped) in ctx.norm

    if lowered in _PLACEHOLDER_WORDS and not said_by_user():
        return f"the type name or filler {stripped!r} is passed as the value"
    if re.fullmatch(r"<[^<>]{1,40}>", stripped) or re.fullmatch(r"\{\{?[^{}]{1,40}\}?\}", stripped):
        return f"the template {stripped!r} is passed as the value"
    if _TEMPLATE_RE.search(stripped):
        return f"the unfilled template {stripped!r} is passed as the value"
    param_words = _param_words(param)
    if lowered.replace("_", " ") == param_words and len(lowered) > 2 and not said_by_user():
        return f"the parameter's own name {stripped!r} is passed as the value"
    if _VAGUE_RE.match(lowered) and len(lowered.split()) <= 4:
        return f"the vague phrase {stripped!r} stands in for a concrete value"
    return None


def _parse_date(value: str) -> tuple[int | None, int, int] | None:
    dates = _dates_in(value)
    full = [d for d in dates if d[0] is not None]
    if not full and not dates:
        return None
    # Prefer the reading that keeps the written order (first pattern that matched).
    return (full or list(dates))[0]


def _grounding(value: Any, info: _ParamInfo, ctx: _Context, required: bool = True) -> tuple[Severity, str] | None:
    """Why a scalar value is not grounded (severity, reason), or None when it is."""
    if isinstance(value, bool) or value is None:
        return None
    if info.has_default and value == info.default:
        return None
    if info.enum is not None and len(info.enum) == 1:
        return None
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return None
        try:
            as_float: float | None = float(value)
        except OverflowError:  # an integer beyond the float range: only its text can match
            as_float = None
        if as_float in ctx.numbers:
            return None
        text = repr(value) if isinstance(value, float) else str(value)
        if ctx.in_earlier(" " + text + " ", _compact(text)):
            return None
        if str(value) in ctx.compact:  # e.g. an id written inside a token ("order#4521")
            return None
        if text in info.examples or (isinstance(value, float) and value.is_integer() and str(int(value)) in info.examples):
            return "error", f"{value!r} is the schema's example value and does not appear in the instruction"
        return "suspect", f"the number {value!r} does not appear in the instruction"
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    lowered = stripped.lower()
    if len(lowered) >= 4 and lowered in ctx.lower:  # fast path: verbatim in the instruction
        return None
    if not stripped or "REDACTED_CREDENTIAL" in stripped or _REFERENCE_RE.match(stripped):
        return None
    if lowered in ("true", "false", "none", "null", "yes", "no"):  # booleans written as text
        return None
    if re.search(r"\bapi_call_\d+\b|\$\{[^}]*\bfrom\b", stripped, re.IGNORECASE):
        return None
    value_norm = _norm(stripped)
    value_compact = _compact(stripped)
    if not value_compact:
        return None
    if value_norm in ctx.norm or (len(value_compact) >= 4 and value_compact in ctx.compact):
        return None
    if _is_numeric_string(stripped):
        number = float(stripped.replace(",", ""))
        if number in ctx.numbers or number in (0.0, 1.0):
            return None
    date = _parse_date(stripped) if _DATE_HINT.search(stripped) else None
    if date is not None:
        if date in ctx.dates or (None, date[1], date[2]) in ctx.dates:
            return None
        if ctx.has_relative_time:
            return None
    if ctx.in_earlier(value_norm, value_compact):
        return None
    tokens = [t for t in value_norm.split() if t not in _STOPWORDS]
    if not tokens:
        return None
    found = 0
    for token in tokens:
        if _token_supported(token, ctx):
            found += 1
    if found < len(tokens) and _initials_supported(tokens, ctx):
        found = len(tokens)
    coverage = found / len(tokens)
    if coverage >= 0.5:
        return None
    if date is not None:
        return "suspect", f"the date {stripped!r} does not appear in the instruction"
    if coverage == 0 and len(value_compact) > 3 and info.examples and not required and any(
            _compact(e) == value_compact for e in info.examples):
        return "error", f"{stripped!r} is the schema's example value and does not appear in the instruction"
    if coverage > 0 or len(value_compact) <= 3:
        return "suspect", f"{stripped!r} is only partly supported by the instruction ({found}/{len(tokens)} words)"
    if required or info.enum is not None:
        # A required value, or a choice from a closed list, is often an inference ("Apple" -> "AAPL",
        # "comic" -> "Comedy"): the model decides.
        return "suspect", f"nothing of {stripped!r} appears in the instruction (an inference, or invented?)"
    return "error", (f"nothing of {stripped!r} appears in the instruction or in earlier outputs, and the "
                     "optional parameter was not asked for")


def _token_supported(token: str, ctx: _Context) -> bool:
    stem = _stem(token)
    if stem in ctx.tokens or token in ctx.tokens:
        return True
    if token in _CODES and any(f" {name} " in ctx.norm for name in _CODES[token]):
        return True
    if token.isdigit():
        return float(token) in ctx.numbers
    # Spelling variants and derived forms: a long shared prefix ("Berkley"/"Berkeley") or a close spelling
    # ("women"/"woman"); only reached for values about to be flagged, so the scan stays cheap.
    if len(stem) >= 5 and any(t.startswith(stem[:5]) for t in ctx.tokens):
        return True
    return len(token) >= 4 and any(len(t) >= 4 and fuzz.ratio(token, t) >= 80 for t in ctx.tokens)


def _initials_supported(tokens: list[str], ctx: _Context) -> bool:
    """"New York City" for "nyc", "San Francisco" for "SF": the value's initials are an instruction word."""
    if len(tokens) < 2:
        return False
    initials = "".join(t[0] for t in tokens if t and not t.isdigit())
    return len(initials) >= 2 and any(t == initials or (t.startswith(initials) and len(t) <= len(initials) + 1)
                                      for t in ctx.tokens)


def _scalars(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, dict)) and not value)


def _enum_problem(value: Any, enum: tuple[str, ...]) -> str | None:
    allowed = {standardize_string(e) for e in enum}
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if isinstance(item, bool) or item is None or item == "":
            continue
        text = str(item)
        if standardize_string(text) not in allowed:
            return f"{text!r} is not one of the allowed values {list(enum)!r}"
    return None


_RAW_TEMPLATE = re.compile(r"\$\{[^}]*\}|\{\{[^}]*\}\}")


def _repair_raw(raw: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse argument text whose only defect is unquoted ``${...}`` templates; returns (arguments, templates)."""
    templates = _RAW_TEMPLATE.findall(raw)
    if not templates:
        return None, []
    quoted = _RAW_TEMPLATE.sub(lambda m: json.dumps(m.group(0)), raw)
    quoted = quoted.replace('""${', '"${').replace('}""', '}"')
    try:
        parsed = json.loads(quoted)
    except (ValueError, RecursionError):  # not JSON, an integer too long, nested too deeply
        return None, templates
    return (parsed if isinstance(parsed, dict) else None), templates


def _call_key(name: str, arguments: Any, raw: str | None) -> str:
    if arguments is None:
        return name + "\x00raw\x00" + (raw or "").strip()
    return name + "\x00" + json.dumps(arguments, sort_keys=True, default=str)


# --- the checks ---------------------------------------------------------------------------------------

def _instance_findings(inst: Instance) -> list[Finding]:
    findings: list[Finding] = []
    iid = inst.id
    category = str(inst.meta.get("bfcl_category", "")) if inst.meta else ""
    if category == "irrelevance":
        findings.append(Finding(iid, "irrelevance_by_design", "error",
                                "BFCL irrelevance instance: by construction none of the offered tools serves "
                                "the request (the correct behaviour is to call nothing)"))
    if inst.calls is None:
        return findings
    api_calls = [(i, c) for i, c in enumerate(inst.calls) if c.name not in PSEUDO_CALLS]
    if not api_calls:
        # no tools offered (chit-chat turns of dialogue data): calling nothing is the only possible answer
        if category != "irrelevance" and inst.tools and len(inst.instruction.split()) >= 3:
            findings.append(Finding(iid, "no_call_for_request", "error",
                                    "the gold sequence makes no call although the instruction asks for something"))
        return findings

    tools = {t.name: t for t in inst.tools}
    # Multi-turn: what the user said earlier grounds values like the instruction does, and earlier turns'
    # tool results like earlier outputs (both are just the instruction / nothing for single-turn data).
    ctx = _Context(user_text(inst))
    ctx.earlier.extend(earlier_outputs(inst))
    pseudo = inst.meta.get("pseudo_calls") if inst.meta else None
    if isinstance(pseudo, list):
        for entry in pseudo:
            if isinstance(entry, Mapping):
                ctx.earlier.extend(str(v) for v in entry.values() if v)
    seen: dict[str, int] = {}
    names_seen: set[str] = set()
    first_key_of: dict[str, int] = {}
    for index, call in enumerate(inst.calls):
        if call.name in PSEUDO_CALLS:  # not API calls; their text can ground later values
            ctx.earlier.extend(t for t in (call.raw_arguments, call.observation) if t)
            if call.arguments:
                ctx.earlier.append(json.dumps(call.arguments))
            continue
        name = call.name
        tool = tools.get(name)
        arguments = call.arguments
        if tool is None:
            findings.append(Finding(iid, "unknown_function", "error",
                                    f"call {index} names {name!r}, which is not among the offered tools",
                                    call_index=index, function=name, expected=sorted(tools)[:20]))
        if arguments is None and call.raw_arguments and call.raw_arguments.strip():
            repaired, templates = _repair_raw(call.raw_arguments)
            if repaired is None:
                findings.append(Finding(iid, "unparseable_arguments", "error",
                                        f"call {index} ({name}): the arguments are not valid JSON",
                                        call_index=index, function=name, value=call.raw_arguments[:200]))
            arguments = repaired
            # Repaired text is checked argument by argument below; otherwise report its templates here.
            for template in templates if repaired is None else ():
                if not _REFERENCE_RE.match(template):
                    findings.append(Finding(iid, "placeholder_value", "error",
                                            f"call {index} ({name}): the unfilled template {template} is passed "
                                            "instead of a value", call_index=index, function=name,
                                            value=template))
        if tool is not None and arguments is not None:
            infos, required, has_properties = _tool_table(tool.parameters)
            for param in sorted(required):
                if param not in arguments:
                    findings.append(Finding(iid, "missing_required_parameter", "error",
                                            f"call {index} ({name}): required parameter {param!r} is missing",
                                            call_index=index, function=name, argument=param))
                elif _is_empty(arguments[param]):
                    findings.append(Finding(iid, "empty_required_value", "error",
                                            f"call {index} ({name}): required parameter {param!r} is empty "
                                            f"({_short(arguments[param])})", call_index=index, function=name,
                                            argument=param, value=arguments[param]))
            for param, value in arguments.items():
                info = infos.get(param)
                if info is None:
                    severity: Severity = "error" if has_properties else "suspect"
                    findings.append(Finding(iid, "unexpected_parameter", severity,
                                            f"call {index} ({name}): {param!r} is not a parameter of {name}",
                                            call_index=index, function=name, argument=param, value=value,
                                            expected=sorted(infos)[:30]))
                    info = _param_info(param, {})
                if info.is_credential or _is_empty(value):
                    continue
                if isinstance(value, str) and _TEMPLATE_RE.search(value) and _REFERENCE_RE.match(value.strip()):
                    continue
                placeholder = None
                scalars = (value,) if isinstance(value, (str, int, float)) else tuple(_scalars(value))
                for scalar in scalars:
                    placeholder = _placeholder_problem(scalar, param, ctx, info.enum)
                    if placeholder:
                        findings.append(Finding(iid, "placeholder_value", "error",
                                                f"call {index} ({name}), {param}: {placeholder}",
                                                call_index=index, function=name, argument=param, value=scalar))
                        break
                if placeholder:
                    continue
                problem = _type_problem(value, info)
                if problem:
                    findings.append(Finding(iid, "type_mismatch", "error",
                                            f"call {index} ({name}), {param}: {problem}",
                                            call_index=index, function=name, argument=param, value=value,
                                            expected=info.kind))
                    continue
                if info.enum is not None:
                    problem = _enum_problem(value, info.enum)
                    if problem:
                        findings.append(Finding(iid, "enum_mismatch", "error",
                                                f"call {index} ({name}), {param}: {problem}",
                                                call_index=index, function=name, argument=param, value=value,
                                                expected=list(info.enum)))
                        continue
                worst: tuple[Severity, str] | None = None
                for scalar in scalars:
                    verdict = _grounding(scalar, info, ctx, param in required)
                    if verdict is not None and (worst is None or verdict[0] == "error"):
                        worst = verdict
                        if verdict[0] == "error":
                            break
                if worst is not None:
                    findings.append(Finding(iid, "ungrounded_value", worst[0],
                                            f"call {index} ({name}), {param}: {worst[1]}",
                                            call_index=index, function=name, argument=param, value=value))
        # Identical-call detection: only a name seen before can repeat, so most calls skip the key.
        key = _call_key(name, call.arguments, call.raw_arguments) if name in names_seen else name
        if name not in names_seen:
            names_seen.add(name)
            first_key_of[name] = index
        elif first_key_of.get(name) is not None:
            first_index = first_key_of.pop(name)
            earlier = inst.calls[first_index]
            seen[_call_key(earlier.name, earlier.arguments, earlier.raw_arguments)] = first_index
        if key in seen and key != name:
            first = seen[key]
            previous_obs = inst.calls[index - 1].observation if index > 0 else None
            previous_same = index > 0 and _call_key(inst.calls[index - 1].name, inst.calls[index - 1].arguments,
                                                    inst.calls[index - 1].raw_arguments) == key
            if previous_same and previous_obs and _ERROR_OBSERVATION.search(previous_obs[:2000]):
                findings.append(Finding(iid, "identical_retry_after_error", "error",
                                        f"call {index} ({name}) retries call {index - 1} with identical arguments "
                                        "after it failed", call_index=index, function=name,
                                        expected=f"changed arguments (call {index - 1} failed)"))
            else:
                findings.append(Finding(iid, "repeated_identical_call", "error",
                                        f"call {index} ({name}) repeats call {first} with identical arguments",
                                        call_index=index, function=name, expected=f"distinct from call {first}"))
        elif key != name:
            seen.setdefault(key, index)
        # Later calls may take values from this call's output and arguments.
        if call.observation:
            ctx.earlier.append(call.observation)
    return findings


def find_issues(instances: Iterable[Instance]) -> list[Finding]:
    """All findings of all checks, in instance order then call order. Empty input gives []."""
    findings: list[Finding] = []
    for inst in instances:
        findings.extend(_instance_findings(inst))
    return findings


def check_findings(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per finding.

    Columns: ``FINDING_COLUMNS`` = instance_id, check, criterion, severity (``error`` | ``suspect``),
    call_index (0-based; NA for instance-level checks), function, argument, value and expected (JSON
    text, so that every table format can hold them; None when not applicable), message. Empty input, or no finding, gives an empty frame with these columns.
    """
    findings = find_issues(instances)
    columns: dict[str, list[Any]] = {c: [] for c in FINDING_COLUMNS}
    for f in findings:
        columns["instance_id"].append(f.instance_id)
        columns["check"].append(f.check)
        columns["criterion"].append(f.criterion)
        columns["severity"].append(f.severity)
        columns["call_index"].append(f.call_index)
        columns["function"].append(f.function)
        columns["argument"].append(f.argument)
        columns["value"].append(None if f.value is None else json.dumps(_jsonable(f.value), ensure_ascii=False))
        columns["expected"].append(None if f.expected is None else json.dumps(_jsonable(f.expected), ensure_ascii=False))
        columns["message"].append(f.message)
    frame = pd.DataFrame(columns, columns=list(FINDING_COLUMNS))
    frame["call_index"] = frame["call_index"].astype("Int64")
    return frame


def check_flags(instances: Iterable[Instance]) -> pd.DataFrame:
    """One row per instance, cleanlab style: ``instance_id`` then one boolean ``is_<check>_issue`` per check.

    A flag is True when the check fired with severity ``error`` (suspects do not raise flags); plus
    ``n_findings`` (all severities). Empty input gives an empty frame with these columns.
    """
    instances = list(instances)
    by_instance: dict[str, list[Finding]] = {}
    for f in find_issues(instances):
        by_instance.setdefault(f.instance_id, []).append(f)
    columns: dict[str, list[Any]] = {"instance_id": [inst.id for inst in instances]}
    for check in CHECKS:
        columns[f"is_{check}_issue"] = [
            any(f.check == check and f.severity == "error" for f in by_instance.get(inst.id, ()))
            for inst in instances
        ]
    columns["n_findings"] = [len(by_instance.get(inst.id, ())) for inst in instances]
    return pd.DataFrame(columns)


# --- verdicts -----------------------------------------------------------------------------------------

def _no_finding_verdict(inst: Instance, criterion: str, n_api_calls: int) -> tuple[int | None, str, str]:
    """(label, status, rationale) when no check fired for ``criterion``.

    Reliable passes, decided on the reference annotations (see tests/test_checks_reference.py): an empty
    gold sequence cannot misalign parameters or be redundant, and an empty sequence for a BFCL irrelevance
    instance is sufficient; a single call cannot repeat another. Everything else needs the model.
    """
    irrelevance = inst.meta.get("bfcl_category") == "irrelevance" if inst.meta else False
    if criterion == "parameter_alignment" and n_api_calls == 0:
        return 1, "ok", "no calls, so no argument can be misaligned"
    if criterion == "minimality" and n_api_calls <= 1:
        return 1, "ok", "at most one call: nothing is repeated or redundant"
    if criterion == "sufficiency" and n_api_calls == 0 and irrelevance:
        return 1, "ok", "BFCL irrelevance: calling nothing is the expected behaviour"
    return None, "unscored:needs-model", "no rule fired; the rules cannot confirm this criterion on their own"


def _rule_rows(inst: Instance, findings: Sequence[Finding]) -> list[tuple[str, int | None, str, str, list[dict]]]:
    """(criterion, label, status, rationale, evidence) for each of ``RULE_CRITERIA``."""
    n_api_calls = sum(c.name not in PSEUDO_CALLS for c in inst.calls or [])
    rows = []
    for criterion in RULE_CRITERIA:
        relevant = [f for f in findings if f.criterion == criterion]
        errors = [f for f in relevant if f.severity == "error"]
        if inst.calls is None and criterion in SEQUENCE_CRITERIA:
            label, status, rationale = None, "unscored:not_applicable", "no gold calls are known"
        elif errors:
            label, status = 0, "ok"
            rationale = "; ".join(f.message for f in errors[:5]) + (
                f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        elif relevant:
            label, status = None, "unscored:needs-model"
            rationale = "suspect, for the model to decide: " + "; ".join(f.message for f in relevant[:5])
        else:
            label, status, rationale = _no_finding_verdict(inst, criterion, n_api_calls)
        rows.append((criterion, label, status, rationale, [f.evidence() for f in relevant]))
    return rows


def _append_verdict(columns: dict[str, list[Any]], instance_id: str, row: tuple, judge: str, prompt_id: str) -> None:
    """Append one (criterion, label, status, rationale, evidence) row to column lists of ``VERDICT_COLUMNS``."""
    criterion, label, status, rationale, evidence = row
    for name, value in zip(VERDICT_COLUMNS, (instance_id, criterion, label, status, judge, prompt_id,
                                             rationale, evidence)):
        columns[name].append(value)


def _verdict_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(columns, columns=list(VERDICT_COLUMNS))
    frame["label"] = pd.array(frame["label"].tolist(), dtype="Int64")
    return frame


def run_checks(instances: Iterable[Instance]) -> pd.DataFrame:
    """Rule verdicts: one row per instance x criterion in ``RULE_CRITERIA``.

    Columns: ``VERDICT_COLUMNS`` (instance_id, criterion, label, status, judge="rules",
    prompt_id="rules.v1", rationale, evidence). ``label`` is 0 (error) when a check of severity ``error``
    fired for that criterion, 1 (holds) only where the absence of findings is a reliable pass (see
    ``_no_finding_verdict``), and None otherwise with status ``unscored:needs-model`` — suspect findings
    then travel in ``evidence`` for the model judge. Instances with ``calls`` None get
    ``unscored:not_applicable`` for the sequence criteria. ``evidence`` is a list of dicts (check,
    severity, call_index, function, argument, value, expected, message). Empty input gives an empty frame
    with these columns.
    """
    columns: dict[str, list[Any]] = {c: [] for c in VERDICT_COLUMNS}
    for inst in instances:
        for row in _rule_rows(inst, _instance_findings(inst)):
            _append_verdict(columns, inst.id, row, RULES_JUDGE, RULES_PROMPT_ID)
    return _verdict_frame(columns)
