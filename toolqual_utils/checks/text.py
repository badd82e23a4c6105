"""Text normalisation shared by the checks and the offline heuristics.

Matching a call's value against the instruction normalises casing, quotes, whitespace and punctuation
(:func:`norm`, :func:`compact`), plural endings (:func:`stem`), numbers (``"5"``, ``5``, ``5.0``,
``"five"``, ``"1,000"``, ``"10k"``, ``"15%"``: :func:`numbers_in`), dates in several formats
(``2023-04-15``, ``04/15/2023``, ``April 15th, 2023``, ``15 April 2023``: :func:`dates_in`), and country,
language, currency and US-state names to their codes (``Germany`` -> ``DE``: :data:`CODES`).

:class:`InstructionText` holds the normalised forms of one instruction (computed on first use) and the
texts of earlier outputs a later value may come from; :func:`token_supported` and
:func:`initials_supported` say whether a word of a value is backed by it.

Pure module: standard library and rapidfuzz.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Final

from rapidfuzz import fuzz

__all__ = [
    "CODES", "COMMON_WORDS", "NUMBER_WORDS", "REQUEST_RE", "STOPWORDS", "RELATIVE_TIME", "DATE_HINT", "CAMEL",
    "InstructionText", "ignorecase_test", "makes_request", "norm", "compact", "stem", "numbers_in", "dates_in",
    "parse_date", "param_words", "token_supported", "initials_supported", "request_clauses", "name_words",
    "value_candidates",
]

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"[0-9A-Za-z]+")
_DIGIT = re.compile(r"\d")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%|k\b)?", re.IGNORECASE)
_NUMBER_LOWER = re.compile(_NUMBER_RE.pattern)  # for lower-cased ASCII text
#: number words and the value they stand for ("a" and "an" count as one)
NUMBER_WORDS: Final[Mapping[str, float]] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "half": 0.5,
    "single": 1, "once": 1, "twice": 2, "double": 2, "triple": 3, "first": 1, "second": 2, "third": 3,
    "fourth": 4, "fifth": 5, "tenth": 10, "a": 1, "an": 1, "couple": 2, "pair": 2,
}
#: function words a value may contain without them counting as content ("new" is content: "New York")
STOPWORDS: Final = frozenset(
    "a an the of for to in on at by from with and or is are be as it its this that these those me my i we "
    "our you your please can could would will shall should do does did get find show give tell list all any "
    "some about into over under than then also just what which who whom how when where why there here not no "
    "yes if so up down out".split()
)
#: short common words that initials must not be mistaken for unless written in capitals ("US", not "us")
COMMON_WORDS: Final = STOPWORDS | frozenset("us am go hi oh ok ah ha ya yo eh um ad ex".split())
#: the instruction speaks of relative time: a concrete date in a call may be inferred from "today"
RELATIVE_TIME: Final = re.compile(
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
#: the date patterns for lower-cased ASCII text (case-sensitive: the same matches there, found faster)
_DATE_PATTERNS_LOWER = tuple((re.compile(p.pattern, p.flags & ~re.IGNORECASE), order) for p, order in _DATE_PATTERNS)
#: cheap pre-check before the date patterns: digit-separator-digit, or a digit next to a month name
DATE_HINT: Final = re.compile(
    rf"\d[-/.]\d|\d{{8}}|({_MONTH_ALT})\.?\s*\d|\d\s*(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_ALT})", re.I
)
#: a lower-case letter or digit followed by a capital: the seam of a camelCase name
CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

Date = tuple[int | None, int, int]

#: a sentence or clause that asks for something (a question, a polite or direct request, a task verb)
REQUEST_RE: Final = re.compile(
    r"\?|\b(can you|could you|would you|please|i need|i want|i would like|i'd like|help me|let me know|"
    r"tell me|show me|find|get|retrieve|fetch|search|look up|give me|provide|calculate|compute|convert|"
    r"translate|create|generate|make|book|send|delete|remove|add|update|set|check|list|play|reset|clean|"
    r"analy[sz]e|determine|schedule|cancel|order|track)\b",
    re.IGNORECASE,
)


def ignorecase_test(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """A test equal to ``pattern.search(text) is not None`` for a pattern compiled with ``re.IGNORECASE``
    whose literal letters are all lower case, but faster on ASCII text (most text): there, ignoring case is
    the same as searching the lower-cased text case-sensitively, which Python's regex engine does several
    times faster. Other text is searched with ``pattern`` itself (its case-insensitive matches go beyond
    lower-casing: ``ſ`` matches ``s``).

    Raises:
        ValueError: ``pattern`` does not ignore case, or has an upper-case literal letter.
    """
    if not pattern.flags & re.IGNORECASE or any(c.isupper() for c in re.sub(r"\\.", "", pattern.pattern)):
        raise ValueError(f"{pattern.pattern!r}: expected a case-insensitive pattern written in lower case")
    lower = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)

    def found(text: str) -> bool:
        if text.isascii():
            return lower.search(text.lower()) is not None
        return pattern.search(text) is not None

    return found


#: ``REQUEST_RE.search(text) is not None``, faster (see :func:`ignorecase_test`)
makes_request: Final = ignorecase_test(REQUEST_RE)

#: where one request of an instruction ends and the next begins: a sentence end, a semicolon, a line
#: break, or a coordinating word ("and", "then", "also", "plus", "as well as"), with or without a comma
_CLAUSE_BREAK = re.compile(
    r"(?<=[.!?;])\s+|\n+|,?\s+(?:and\s+then|and\s+also|and|then|also|plus|as\s+well\s+as)\s+",
    re.IGNORECASE,
)
#: a concrete value written in a request: a quoted string, a code in capitals (USD), a word with digits
#: (order#4521, 192.168.1.1), an e-mail or URL, a capitalised name (Madrid), a number
_VALUE_TOKEN = re.compile(
    r"(?<!\w)\"[^\"]+\"|(?<!\w)'[^']+'(?!\w)|https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+|"
    r"\b[A-Z]{2,6}\b|\b[A-Za-z]+\d[\w#./:-]*|\b\d+(?:[.,:/-]\d+)+\b|\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b|"
    r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])"
)
#: words of a tool name that say nothing about what it does (retrieval verbs, connectives, versions)
_GENERIC_NAME_WORDS = frozenset(
    "get set list search find fetch retrieve query lookup look info information data detail details api apis "
    "by for from to of and or with all the a an in on at v1 v2 v3 new my your call tool function".split()
)


#: for ASCII text (most text): letters and digits in lower case, every other character a space (norm) or
#: nothing (compact); one table lookup per character, much faster than the regular expression
_ASCII_NORM = str.maketrans({chr(i): chr(i).lower() if chr(i).isalnum() else " " for i in range(128)})
_ASCII_COMPACT = str.maketrans({chr(i): chr(i).lower() if chr(i).isalnum() else None for i in range(128)})


def norm(text: str) -> str:
    """Lower-case, every run of non-alphanumerics -> one space, padded with spaces for word lookups."""
    if text.isascii():
        return " " + " ".join(text.translate(_ASCII_NORM).split()) + " "
    return " " + _NON_ALNUM.sub(" ", text.translate(_QUOTES).lower()).strip() + " "


def compact(text: str) -> str:
    """Lower-case letters and digits only (``"Order #4521"`` -> ``"order4521"``)."""
    if text.isascii():
        return text.translate(_ASCII_COMPACT)
    return _NON_ALNUM.sub("", text.lower())


@lru_cache(maxsize=1 << 17)
def stem(token: str) -> str:
    """A crude singular: ``cities`` -> ``city``, ``boxes`` -> ``box``, ``flights`` -> ``flight``."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("sses", "shes", "ches", "xes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


@lru_cache(maxsize=65536)
def param_words(param: str) -> str:
    """A parameter name as words: ``departureDate`` / ``departure_date`` -> ``departure date``."""
    return CAMEL.sub(" ", param).replace("_", " ").lower().strip()


def numbers_in(text: str) -> set[float]:
    """The numbers written with digits in ``text`` (``1,000``; ``15%`` also as 0.15; ``10k`` also as 10000)."""
    numbers: set[float] = set()
    first_digit = _DIGIT.search(text)
    if first_digit is None:  # the common case of no number at all, found fast
        return numbers
    pattern = _NUMBER_RE
    if text.isascii():  # ignoring case is lower-casing there, and the case-sensitive search is faster
        text, pattern = text.lower(), _NUMBER_LOWER
    # a number starts at most two characters ("-$") before its first digit
    for match in pattern.finditer(text, max(0, first_digit.start() - 2)):
        whole = float(match.group(1).replace(",", "") + (match.group(2) or ""))
        numbers.add(whole)
        suffix = (match.group(3) or "").lower()
        if suffix == "%":
            numbers.add(whole / 100)
        elif suffix == "k":
            numbers.add(whole * 1000)
    return numbers


def dates_in(text: str) -> set[Date]:
    """Every (year or None, month, day) a date in ``text`` can be read as (both day/month orders)."""
    dates: set[Date] = set()
    if _DIGIT.search(text) is None:  # every date pattern has a digit
        return dates
    patterns: tuple[tuple[re.Pattern[str], tuple[str, str, str]], ...] = _DATE_PATTERNS
    if text.isascii():  # ignoring case is lower-casing there, and the case-sensitive search is faster
        text, patterns = text.lower(), _DATE_PATTERNS_LOWER
    for pattern, order in patterns:
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


def request_clauses(instruction: str) -> list[str]:
    """The instruction cut where one request may end and another begin (sentences, semicolons, commas,
    "and", "then", "also", "plus"); pieces without a letter are dropped. Coarse on purpose: a check that
    uses it asks more of a clause than being one."""
    pieces = (p.strip(" .!?;,\"'") for p in _CLAUSE_BREAK.split(instruction.translate(_QUOTES)))
    return [p for p in pieces if p and any(ch.isalpha() for ch in p)]


def value_candidates(clause: str, vocabulary: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(numbers, other values) written in a clause: plain numbers, and quoted strings, codes in capitals,
    words with digits, e-mails, URLs and capitalised names. The clause's first word (capitalised as a
    sentence start), stopwords and words of ``vocabulary`` (stemmed: the tool's own words) are not values."""
    numbers: list[str] = []
    others: list[str] = []
    start = len(clause) - len(clause.lstrip())
    for match in _VALUE_TOKEN.finditer(clause):
        token = match.group(0)
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            numbers.append(token)
            continue
        words = norm(token).split()
        if match.start() == start and token[:1].isupper() and token[1:2].islower():  # a capitalised first word
            continue
        if not words or all(w in STOPWORDS or stem(w) in vocabulary or w == "i" for w in words):
            continue
        others.append(token)
    return numbers, others


@lru_cache(maxsize=65536)
def name_words(tool_name: str) -> frozenset[str]:
    """The words of a tool name that say what it does, stemmed: ``convert_currency`` -> {convert,
    currency}; ``getWeatherForecast`` -> {weather, forecast} (generic words such as get/list/search/info and
    words shorter than three letters are left out)."""
    words = norm(CAMEL.sub(" ", tool_name).replace("_", " ").replace("-", " ")).split()
    return frozenset(stem(w) for w in words
                     if len(w) >= 3 and not w.isdigit() and w not in _GENERIC_NAME_WORDS and w not in STOPWORDS)


def parse_date(value: str) -> Date | None:
    """One reading of a date value (a full date preferred), or None when ``value`` holds no date."""
    dates = dates_in(value)
    full = [d for d in dates if d[0] is not None]
    if not full and not dates:
        return None
    return (full or list(dates))[0]


# --- codes a sensible assistant infers from names ("Germany" -> DE) ------------------------------------

#: code (lower case) -> the names it stands for; small, common tables (countries, languages, currencies,
#: US states)
CODES: Final[dict[str, tuple[str, ...]]] = {}


def _add_codes(table: str) -> None:
    for entry in table.strip().split(";"):
        names, codes = entry.split(":")
        for code in codes.split(","):
            CODES.setdefault(code.strip().lower(), ())
            CODES[code.strip().lower()] += tuple(n.strip().lower() for n in names.split("|"))


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


# --- one instruction, normalised once ------------------------------------------------------------------


class _Forms:
    """The normalised forms of one text, computed on first use; shared by the :class:`InstructionText`
    objects made for one instance (:meth:`InstructionText.fork`)."""

    __slots__ = ("raw", "lower", "norm", "compact", "relative", "numbers", "dates", "tokens", "words")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.lower = raw.lower()
        self.norm: str | None = None
        self.compact: str | None = None
        self.relative: bool | None = None
        self.numbers: set[float] | None = None
        self.dates: set[Date] | None = None
        self.tokens: set[str] | None = None
        self.words: frozenset[str] | None = None


class InstructionText:
    """The normalised forms of one instruction, computed on first use, and the earlier texts a later value
    may be grounded in (observations and arguments of earlier calls, pseudo-calls), appended by the caller
    (``earlier`` only grows: its normalised forms are kept as they are first needed).

    :meth:`fork` gives a text with the same instruction (its normalised forms shared, not recomputed) and
    its own ``earlier`` list.
    """

    __slots__ = ("_forms", "raw", "lower", "earlier", "_earlier_forms")

    def __init__(self, instruction: str, *, _forms: _Forms | None = None) -> None:
        forms = _Forms(instruction) if _forms is None else _forms
        self._forms = forms
        self.raw = forms.raw
        self.lower = forms.lower
        self.earlier: list[str] = []  # raw texts of earlier observations / arguments (normalised lazily)
        self._earlier_forms: list[tuple[str, str]] = []  # (compact, norm) of earlier[i], as far as needed

    def fork(self, earlier: list[str] | None = None) -> InstructionText:
        """The same instruction (normalised forms shared) with its own ``earlier`` list (a copy of ``earlier``)."""
        twin = InstructionText(self.raw, _forms=self._forms)
        if earlier:
            twin.earlier.extend(earlier)
        return twin

    @property
    def norm(self) -> str:
        forms = self._forms
        if forms.norm is None:
            forms.norm = norm(forms.raw)
        return forms.norm

    @property
    def compact(self) -> str:
        forms = self._forms
        if forms.compact is None:
            forms.compact = compact(forms.raw)
        return forms.compact

    @property
    def has_relative_time(self) -> bool:
        forms = self._forms
        if forms.relative is None:
            forms.relative = RELATIVE_TIME.search(self.norm) is not None
        return forms.relative

    @property
    def numbers(self) -> set[float]:
        forms = self._forms
        if forms.numbers is None:
            numbers = numbers_in(forms.raw)
            numbers.update(float(NUMBER_WORDS[token]) for token in NUMBER_WORDS.keys() & self.norm.split())
            forms.numbers = numbers
        return forms.numbers

    @property
    def dates(self) -> set[Date]:
        forms = self._forms
        if forms.dates is None:
            forms.dates = dates_in(forms.raw)
        return forms.dates

    @property
    def tokens(self) -> set[str]:
        """The instruction's words, stemmed."""
        forms = self._forms
        if forms.tokens is None:
            forms.tokens = set(map(stem, self.norm.split()))
        return forms.tokens

    @property
    def words(self) -> frozenset[str]:
        """The instruction's words as written (letters and digits, case kept)."""
        forms = self._forms
        if forms.words is None:
            forms.words = frozenset(_WORD.findall(forms.raw))  # (curly quotes are no word characters either)
        return forms.words

    def in_earlier(self, value_norm: str, value_compact: str) -> bool:
        """True when the value occurs in an earlier output or argument text."""
        earlier = self.earlier
        if not earlier:
            return False
        seen = self._earlier_forms
        if len(seen) > len(earlier):  # the list was shortened: start again
            seen.clear()
        for text in earlier[len(seen):]:  # normalise each earlier text once, however many values ask
            lowered = text.lower()
            seen.append((compact(lowered), norm(lowered)))
        use_compact = bool(value_compact) and len(value_compact) >= 2
        use_norm = bool(value_norm.strip())
        for text_compact, text_norm in seen:
            if use_compact and value_compact in text_compact:
                return True
            if use_norm and value_norm in text_norm:
                return True
        return False


def token_supported(token: str, text: InstructionText) -> bool:
    """True when one (normalised) word of a value is backed by the instruction: the same word or its
    stem, a code for a name the instruction uses, a number it states, a spelling variant or derived form
    (a long shared prefix, "Berkley"/"Berkeley"; or a close spelling, "women"/"woman")."""
    stemmed = stem(token)
    if stemmed in text.tokens or token in text.tokens:
        return True
    if token in CODES and any(f" {name} " in text.norm for name in CODES[token]):
        return True
    if token.isdigit():
        return float(token) in text.numbers
    # Only reached for values about to be flagged, so the scan stays cheap.
    if len(stemmed) >= 5 and any(t.startswith(stemmed[:5]) for t in text.tokens):
        return True
    return len(token) >= 4 and any(len(t) >= 4 and fuzz.ratio(token, t) >= 80 for t in text.tokens)


def initials_supported(tokens: list[str], text: InstructionText) -> bool:
    """"New York City" for "NYC", "San Francisco" for "SF": the value's initials are a whole word of the
    instruction, written in capitals (an abbreviation) or not a common word. Never a prefix of a word
    ("th" of "Tom Hanks" is not "the"), and never a common word written in lower case ("us" in "tell us"
    is not "United States")."""
    if len(tokens) < 2:
        return False
    initials = "".join(t[0] for t in tokens if t and not t.isdigit())
    if len(initials) < 2:
        return False
    return any(word.lower() == initials and (word.isupper() or initials not in COMMON_WORDS)
               for word in text.words)
