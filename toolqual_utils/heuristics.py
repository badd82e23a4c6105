"""Offline heuristics for the instruction criteria (specificity, coherence, solvability).

These read the instruction, the tools' names/descriptions/schemas and, where present, the gold calls and
the rule findings of :mod:`toolqual_utils.checks`. They decide only where a signal is explainable and was
measured reliable on the adjudicated reference annotations (``tests/test_heuristics.py`` computes
precision/recall and asserts the floors); everywhere else they return ``unscored:needs_model`` and pass
what they saw on as evidence. judge = ``heuristic``, prompt_id = ``heuristics.v2``.

Heuristics (label 0 = error, 1 = holds):

- **specificity**
    - ``asks_user_for_details`` (0): the gold sequence calls the ``getDetails`` pseudo-tool, i.e. the data
      itself admits the instruction lacked a value.
    - ``vague_reference_used`` (0): the instruction only gestures at a value ("a specific actor", "a certain
      format", "a famous actor") *and* a call fills a parameter with a placeholder or a value found nowhere
      (a rule finding of severity ``error`` for ``placeholder_value``/``ungrounded_value``).
    - ``required_values_present`` (1): every required argument of every call is found in the instruction
      (or exempt, or taken from an earlier output) and the instruction has no vague reference.
- **coherence**
    - ``single_request`` (1): the instruction makes one request (guide: "a single request is coherent"):
      one request sentence, or one API call.
    - ``disconnected_requests`` (0): several request sentences, served by calls whose tools share no topic
      word (names + descriptions, generic words removed), pass no value to each other, share no argument
      value (same entity) and belong to different services: the requests split into unrelated groups.
      Tools of one service (ToolBench ``_for_<tool>``, ``meta["api"]``) only make it abstain: the paper's
      own low-coherence example lies within one translation API. (v2: the argument-value and service
      links were added after v1 called single-API ToolAlpaca instructions such as
      ``eval_real/AviationAPI#10`` unrelated.)
- **solvability**: only ``irrelevance_by_design`` (0, from the rules: BFCL irrelevance). Matching request
  words against tool texts was not reliable enough to decide (one reference error; tool descriptions are
  terse), so every other instance is ``unscored:needs_model``.

:func:`offline_rows` (one instance) and :func:`offline_verdicts` (a table) merge rule and heuristic verdicts
into one row per instance x criterion (all six criteria), which is what ``toolqual check`` writes.

Pure module: standard library and pandas only.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from .checks import RULES_PROMPT_ID, Finding, find_issues, instance_findings, rule_decisions
from .checks.scan import instruction_text
from .checks.text import CAMEL, makes_request, norm, stem
from .checks.tool_schema import table_of
from .checks.values import ungrounded
from .schema import CRITERIA, INSTRUCTION_CRITERIA, PSEUDO_CALLS, Instance, ToolSpec, shared_tool_facts
from .verdicts import HEURISTICS_JUDGE, RULES_JUDGE, Decision, Status, VerdictRow, verdict_frame

if TYPE_CHECKING:  # tables are made by verdict_frame; the model judge's planner imports this module without pandas
    import pandas as pd

__all__ = [
    "HEURISTIC_CRITERIA", "HEURISTICS_JUDGE", "HEURISTICS_PROMPT_ID", "coherence_row", "heuristic_decisions",
    "heuristic_rows", "offline_decisions", "offline_rows", "offline_verdicts", "run_heuristics",
]

HEURISTICS_PROMPT_ID: Final = "heuristics.v2"
HEURISTIC_CRITERIA: Final = INSTRUCTION_CRITERIA

_VAGUE_ADJECTIVES = r"specific|certain|particular|given|famous|popular|random|well[- ]known|favou?rite"
_VAGUE_PHRASE = re.compile(rf"\b(?:a|an|the|some|this|that|one)\s+(?:{_VAGUE_ADJECTIVES})\s+([a-z]+)", re.IGNORECASE)
#: in lower-cased ASCII text (where ignoring case is lower-casing): one of the adjectives (a fast test), and
#: a vague phrase
_VAGUE_ADJECTIVE = re.compile(_VAGUE_ADJECTIVES)
_VAGUE_LOWER = re.compile(_VAGUE_PHRASE.pattern)
#: where a sentence ends: white space after ".", "!" or "?", or line breaks. Written as
#: ``(?<=[.!?])\s+|\n+`` would be, but starting with the white space character itself, which lets the regex
#: engine skip to the next white space instead of trying every position (twice as fast)
_SENTENCE_SPLIT = re.compile(r"\s(?:(?<=[.!?]\s)\s*|(?<=\n)\n*)")
_POLITE_ONLY = re.compile(r"^\s*(thank(s| you)[^.?!]*|i appreciate[^.?!]*|any help[^.?!]*)[.!]?\s*$", re.IGNORECASE)
#: Words too generic to tie two tools to one topic.
_GENERIC = frozenset(
    "get set list find search retrieve fetch return returns information info data details detail name id ids "
    "type types specify specified want which value values use used using new given based number numbers "
    "string api apis request response result results query parameter parameters optional required default "
    "e g eg example such like user users provide provides specific the of for to in on and or a an by with "
    "from is are be this that it its you your can will should want desired about into at as all any each "
    "calculate compute check create make update delete remove add".split()
)


@lru_cache(maxsize=65536)
def _topic_words(text: str) -> frozenset[str]:
    words = norm(CAMEL.sub(" ", text).replace("_", " ")).split()
    return frozenset(stem(w) for w in words if len(w) > 2 and w not in _GENERIC and not w.isdigit())


def _tool_topic_words(name: str, tool: ToolSpec | None) -> frozenset[str]:
    """The topic words of a called tool: its name (the ``_for_<tool>`` part too), description and parameters."""
    if tool is None:
        return _topic_words(name.split("_for_")[-1] + " " + name)
    facts = shared_tool_facts(tool)
    if facts is not None and "topic_words" in facts:
        return facts["topic_words"]
    text = name.split("_for_")[-1] + " " + name + " " + tool.description + " " + " ".join(
        f"{p} {str(s.get('description', '')) if isinstance(s, dict) else ''}" for p, s in tool.properties.items())
    words = _topic_words(text)
    if facts is not None:
        facts["topic_words"] = words
    return words


def _request_sentences(instruction: str) -> list[str]:
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(instruction.strip().strip('"')) if s.strip()]
    return [s for s in sentences if makes_request(s) and not _POLITE_ONLY.match(s)]


def _api_calls(inst: Instance) -> list[tuple[int, Any]]:
    return [(i, c) for i, c in enumerate(inst.calls or []) if c.name not in PSEUDO_CALLS]


def _asks_user(inst: Instance) -> bool:
    names = [c.name for c in inst.calls or []]
    pseudo = inst.meta.get("pseudo_calls") if inst.meta else None
    if isinstance(pseudo, list):
        names.extend(str(p.get("name")) for p in pseudo if isinstance(p, dict))
    return "getDetails" in names


def _vague_phrases(instruction: str) -> list[str]:
    """The phrases that only gesture at a value ("a specific actor"), as written. Most instructions have none,
    which ASCII text shows fast in lower case."""
    if instruction.isascii():
        lowered = instruction.lower()
        if _VAGUE_ADJECTIVE.search(lowered) is None or _VAGUE_LOWER.search(lowered) is None:
            return []
    return [m.group(0) for m in _VAGUE_PHRASE.finditer(instruction)]


def _specificity(inst: Instance, findings: Sequence[Finding]) -> Decision:
    vague = _vague_phrases(inst.instruction)
    evidence: list[dict[str, Any]] = [{"heuristic": "vague_reference", "phrase": p} for p in vague]
    if _asks_user(inst):
        return Decision(0, Status.OK, "the gold sequence asks the user for a missing detail (getDetails)", [
            {"heuristic": "asks_user_for_details"}, *evidence])
    if inst.calls is None:
        return Decision(None, Status.UNSCORED_NEEDS_MODEL, "no gold calls to compare the instruction with", evidence)
    unsupported = [f for f in findings if f.severity == "error"
                   and f.check in ("placeholder_value", "ungrounded_value")]
    if vague and unsupported:
        shown = "; ".join(f.message for f in unsupported[:3])
        return Decision(0, Status.OK, (f"the instruction only gestures at a value ({', '.join(vague[:3])}) and the "
                                       f"calls fill it with a placeholder or an invented value: {shown}"), [
            {"heuristic": "vague_reference_used"}, *evidence, *[f.evidence() for f in unsupported[:5]]])
    if vague:
        return Decision(None, Status.UNSCORED_NEEDS_MODEL, f"vague reference(s): {', '.join(vague[:3])}", evidence)
    api_calls = _api_calls(inst)
    if not api_calls:
        return Decision(None, Status.UNSCORED_NEEDS_MODEL, "no calls show which values were needed", evidence)
    tools = {t.name: t for t in inst.tools}
    # specificity reads the whole dialogue: earlier user turns count, and so do earlier turns' tool results
    text = instruction_text(inst)  # normalised once for the checks and the heuristics of this instance
    for index, call in enumerate(inst.calls or []):
        if call.name in PSEUDO_CALLS:
            continue
        tool = tools.get(call.name)
        if tool is None or call.arguments is None:
            return Decision(None, Status.UNSCORED_NEEDS_MODEL, f"call {index} cannot be read against a schema",
                            evidence)
        infos, required, _ = table_of(tool)
        for param in sorted(required):  # sorted: a frozenset iterates in hash order
            if param not in call.arguments:
                return Decision(None, Status.UNSCORED_NEEDS_MODEL, f"call {index} lacks required {param!r}",
                                evidence)
            info = infos[param]
            if info.is_credential:
                continue
            for value in _flat(call.arguments[param]):
                if ungrounded(value, info, text) is not None:
                    return Decision(None, Status.UNSCORED_NEEDS_MODEL, (
                        f"call {index} ({call.name}): required {param!r}={value!r} is not plainly in the "
                        "instruction"), evidence)
        if call.observation:
            text.earlier.append(call.observation)
    return Decision(1, Status.OK, "every required value of every call is found in the instruction or an earlier "
                    "output", [{"heuristic": "required_values_present"}])


def _flat(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flat(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _service(inst: Instance, tool_name: str) -> str | None:
    """The service a tool belongs to: ToolBench's ``<api>_for_<tool>`` suffix, or ``meta["api"]`` when the
    loader recorded that all of the instance's tools come from one API (ToolAlpaca); else None."""
    if "_for_" in tool_name:
        return tool_name.rsplit("_for_", 1)[-1]
    api = inst.meta.get("api") if inst.meta else None
    return api if isinstance(api, str) and api else None


def _tool_groups(inst: Instance, api_calls: list[tuple[int, Any]]) -> list[list[str]]:
    """The called tools (names in call order) in groups of related ones: linked by a shared topic word, one
    service, a shared argument value, or a value flowing from one call's output into a later call."""
    names = list(dict.fromkeys(c.name for _, c in api_calls))
    if len(names) < 2:
        return [names]
    tools = {t.name: t for t in inst.tools}
    words = {name: _tool_topic_words(name, tools.get(name)) for name in names}
    # Union-find over called tools
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    service = {name: _service(inst, name) for name in names}
    values: dict[str, set[str]] = {name: set() for name in names}
    for _, call in api_calls:
        values[call.name] |= {normed for v in _flat(call.arguments or {}) if isinstance(v, str)
                              for normed in (norm(v),) if len(normed) >= 3}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            # Linked: a shared topic word, one service (its tools serve one domain; the requests may
            # still be incoherent, so this only keeps the heuristic from calling them unrelated), or
            # the same argument value (both requests are about the same entity, e.g. apt='ORD').
            if (words[a] & words[b] or (service[a] is not None and service[a] == service[b])
                    or values[a] & values[b]):
                parent[root(a)] = root(b)
    for position, (_, call) in enumerate(api_calls):
        if not call.observation:
            continue
        observed = call.observation.lower()
        for _, later in api_calls[position + 1:]:
            for value in _flat(later.arguments or {}):
                if isinstance(value, str) and len(value) >= 4 and value.lower() in observed:
                    parent[root(call.name)] = root(later.name)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def _coherence(inst: Instance) -> Decision:
    requests = _request_sentences(inst.instruction)
    api_calls = _api_calls(inst)
    if len(requests) <= 1:
        return Decision(1, Status.OK, "a single request is coherent", [
            {"heuristic": "single_request", "n_request_sentences": len(requests)}])
    if inst.calls is not None and len(api_calls) <= 1:
        return Decision(1, Status.OK, "one API call serves the instruction: a single request", [
            {"heuristic": "single_request", "n_api_calls": len(api_calls)}])
    if not api_calls:
        return Decision(None, Status.UNSCORED_NEEDS_MODEL, f"{len(requests)} request sentences; no calls to relate "
                        "them", [])
    groups = _tool_groups(inst, api_calls)
    if len(groups) >= 2:
        listing = " | ".join(", ".join(g) for g in groups)
        return Decision(0, Status.OK, (f"{len(requests)} request sentences served by unrelated tool groups that share "
                                       f"no topic word and pass no value: {listing}"), [
            {"heuristic": "disconnected_requests", "groups": groups}])
    return Decision(None, Status.UNSCORED_NEEDS_MODEL, "several related requests: the order and common goal need a "
                    "model", [])


def _solvability(inst: Instance, findings: Sequence[Finding]) -> Decision:
    by_design = [f for f in findings if f.check == "irrelevance_by_design"]
    if by_design:
        return Decision(0, Status.OK, by_design[0].message, [by_design[0].evidence()])
    return Decision(None, Status.UNSCORED_NEEDS_MODEL, "no offline signal decides solvability", [])


def heuristic_decisions(inst: Instance, findings: Sequence[Finding]) -> dict[str, Decision]:
    """The heuristics' :class:`~toolqual_utils.verdicts.Decision` per criterion of ``HEURISTIC_CRITERIA``
    for one instance (given its rule findings)."""
    return {"specificity": _specificity(inst, findings), "coherence": _coherence(inst),
            "solvability": _solvability(inst, findings)}


def heuristic_rows(inst: Instance, findings: Sequence[Finding]) -> list[VerdictRow]:
    """One heuristic verdict per criterion of ``HEURISTIC_CRITERIA`` for one instance (given its rule findings)."""
    decisions = heuristic_decisions(inst, findings)
    return [decisions[criterion].row(inst.id, criterion, HEURISTICS_JUDGE, HEURISTICS_PROMPT_ID)
            for criterion in HEURISTIC_CRITERIA]


def coherence_row(inst: Instance) -> VerdictRow:
    """The heuristic coherence verdict of one instance (what :func:`heuristic_rows` gives for coherence;
    it needs no rule findings)."""
    return _coherence(inst).row(inst.id, "coherence", HEURISTICS_JUDGE, HEURISTICS_PROMPT_ID)


def run_heuristics(instances: Iterable[Instance], findings: Sequence[Finding] | None = None) -> pd.DataFrame:
    """Heuristic verdicts: one row per instance x instruction criterion (specificity, coherence, solvability).

    Columns: ``VERDICT_COLUMNS``; judge="heuristic", prompt_id="heuristics.v2"; ``label`` 1/0 where a
    heuristic decides, None with status ``unscored:needs_model`` otherwise; ``evidence`` a list of dicts
    naming the heuristic. ``findings`` (from :func:`toolqual_utils.checks.find_issues`) are recomputed
    when not given. Empty input gives an empty frame with these columns.
    """
    instances = list(instances)
    if findings is None:
        findings = find_issues(instances)
    by_instance: dict[str, list[Finding]] = {}
    for f in findings:
        by_instance.setdefault(f.instance_id, []).append(f)
    return verdict_frame(row for inst in instances for row in heuristic_rows(inst, by_instance.get(inst.id, [])))


def offline_decisions(inst: Instance,
                      findings: Sequence[Finding] | None = None) -> list[tuple[str, str, str, Decision]]:
    """Rules and heuristics merged for one instance: (criterion, judge, prompt_id, decision) per criterion,
    in ``CRITERIA`` order (what :func:`offline_rows` makes rows of).

    For each criterion the decided verdict wins (status ``ok``), rules before heuristics; when neither
    decides, the rules' unscored verdict is kept (its evidence carries the suspect findings) with the
    heuristic evidence appended; a criterion only the heuristics address keeps the heuristic verdict.
    """
    if findings is None:
        findings = instance_findings(inst)
    rules = rule_decisions(inst, findings)
    heuristics = heuristic_decisions(inst, findings)
    merged = []
    for criterion in CRITERIA:
        rule, heuristic = rules.get(criterion), heuristics.get(criterion)
        if heuristic is None or (rule is not None and rule.status == Status.OK):
            if rule is not None:
                merged.append((criterion, RULES_JUDGE, RULES_PROMPT_ID, rule))
        elif rule is None:
            merged.append((criterion, HEURISTICS_JUDGE, HEURISTICS_PROMPT_ID, heuristic))
        elif heuristic.status == Status.OK:
            merged.append((criterion, HEURISTICS_JUDGE, HEURISTICS_PROMPT_ID,
                           Decision(heuristic.label, heuristic.status, heuristic.rationale,
                                    [*heuristic.evidence, *rule.evidence])))
        else:
            merged.append((criterion, RULES_JUDGE, RULES_PROMPT_ID,
                           Decision(rule.label, rule.status, rule.rationale, [*rule.evidence, *heuristic.evidence])))
    return merged


def offline_rows(inst: Instance, findings: Sequence[Finding] | None = None) -> list[VerdictRow]:
    """Rules and heuristics merged for one instance (:func:`offline_decisions`): one row per criterion, in
    ``CRITERIA`` order."""
    iid = inst.id
    return [decision.row(iid, criterion, judge, prompt_id)
            for criterion, judge, prompt_id, decision in offline_decisions(inst, findings)]


def offline_verdicts(instances: Iterable[Instance]) -> pd.DataFrame:
    """Rules and heuristics merged (:func:`offline_rows`): one row per instance x criterion, all six
    criteria, in ``CRITERIA`` order; what ``toolqual check`` writes.

    Columns: ``VERDICT_COLUMNS``. Empty input gives an empty frame with these columns.
    """
    return verdict_frame(row for inst in instances for row in offline_rows(inst))
