"""The fast paths of the checks and heuristics give exactly the answers of the plain definitions they stand
for (``toolqual check`` must write the same bytes, only sooner): text normalisation, case-insensitive
searches done in lower case, the sentence split, vague phrases, rules and heuristics merged per instance,
and a call's open arguments after a claim."""
from __future__ import annotations

import random
import re
from operator import attrgetter

import pytest

from toolqual_utils import heuristics
from toolqual_utils.checks import instance_findings, rule_rows
from toolqual_utils.checks.scan import CallScan, InstanceScan
from toolqual_utils.checks.text import REQUEST_RE, compact, dates_in, ignorecase_test, makes_request, norm, numbers_in
from toolqual_utils.heuristics import heuristic_rows, offline_rows
from toolqual_utils.io import read_instances
from toolqual_utils.schema import CRITERIA, Instance
from toolqual_utils.verdicts import VERDICT_COLUMNS, Status, VerdictRow
from conftest import DATA

#: characters that exercise the edges: ASCII punctuation and white space, letters whose case folds beyond
#: lower-casing (long s, Kelvin sign, dotted capital I), curly quotes, a no-break space, accents, digits
EDGY = list("aAsSkKiIzZ09 .,!?;:'\"-_$%#@/\n\t\r\x0b\x0c") + ["\u017f", "\u212a", "\u0130", "\u2019", "\u201c",
                                                               "\u00a0", "\u00e9", "\u2028"]
WORDS = ["find", "FIND", "get", "please", "Can You", "analyse", "a specific", "the Given", "well-known", "April",
         "15th", "2023-04-15", "10K", "1,000", "-$3.5", "15%", "thanks.", "\u017fearch", "\u212aeep"]


def _samples(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(EDGY) if rng.random() < 0.6 else rng.choice(WORDS) for _ in range(rng.randint(0, 12))]
        out.append("".join(parts))
    return out


SAMPLES = _samples(4000, 7) + ["", " ", "\u00a0", "Order #4521!", "“New York”", "ab\u2019cd", "İstanbul"]


def test_norm_and_compact_equal_their_regex_definition():
    non_alnum = re.compile(r"[^0-9a-z]+")
    quotes = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
    for sample in SAMPLES:
        assert norm(sample) == " " + non_alnum.sub(" ", sample.translate(quotes).lower()).strip() + " ", sample
        assert compact(sample) == non_alnum.sub("", sample.lower()), sample


def test_ignorecase_test_answers_as_the_case_insensitive_search():
    for pattern in (REQUEST_RE, heuristics._VAGUE_PHRASE, re.compile(r"\bks\w", re.IGNORECASE)):
        found = ignorecase_test(pattern)
        for sample in SAMPLES:
            assert found(sample) == (pattern.search(sample) is not None), (pattern.pattern, sample)
    # letters whose case folds beyond lower-casing are still found (through the pattern itself)
    assert makes_request("\u017fearch it") and REQUEST_RE.search("\u017fearch it")


@pytest.mark.parametrize("pattern", [re.compile("find"), re.compile("Find", re.IGNORECASE)])
def test_ignorecase_test_refuses_patterns_it_cannot_serve(pattern):
    with pytest.raises(ValueError, match="case-insensitive pattern written in lower case"):
        ignorecase_test(pattern)


def test_numbers_and_dates_of_ascii_text_equal_the_case_insensitive_search():
    # ASCII text is searched in lower case; text with a non-ASCII character (here after a space, which ends
    # no number or date) with the case-insensitive patterns themselves
    examples = ["Book it for APRIL 15th, 2023 or 15 april", "about 10K or 10k users, -$1,000.50 and 15%", "x5 5.5 -3"]
    for sample in SAMPLES + examples:
        if sample.isascii():
            assert numbers_in(sample) == numbers_in(sample + " \u00e9"), sample
            assert dates_in(sample) == dates_in(sample + " \u00e9"), sample
    assert {10_000.0, 1000.5, 0.15} <= numbers_in(examples[1]) and (2023, 4, 15) in dates_in(examples[0])
    assert numbers_in(examples[2]) == {5.5, 3.0} == numbers_in(examples[2] + " \u00e9")


def test_sentence_split_equals_its_documented_pattern():
    documented = re.compile(r"(?<=[.!?])\s+|\n+")
    for sample in SAMPLES:
        assert heuristics._SENTENCE_SPLIT.split(sample) == documented.split(sample), sample


def test_vague_phrases_are_the_matches_of_the_pattern_as_written():
    for sample in SAMPLES + ["Find A Specific actor and the WELL-KNOWN author", "one \u017fpecific thing"]:
        assert heuristics._vague_phrases(sample) == [m.group(0) for m in heuristics._VAGUE_PHRASE.finditer(sample)]
    assert heuristics._vague_phrases("Find A Specific actor") == ["A Specific actor"]


def _merged_reference(inst: Instance) -> list[VerdictRow]:
    """Rules and heuristics merged as offline_rows documents it, from the rows of each."""
    findings = instance_findings(inst)
    merged = {row.criterion: row for row in rule_rows(inst, findings)}
    for row in heuristic_rows(inst, findings):
        current = merged.get(row.criterion)
        if current is None:
            merged[row.criterion] = row
        elif current.status != Status.OK and row.status == Status.OK:
            merged[row.criterion] = row.with_evidence(current.evidence)
        elif current.status != Status.OK:
            merged[row.criterion] = current.with_evidence(row.evidence)
    return [merged[c] for c in CRITERIA if c in merged]


def test_offline_rows_merge_rules_and_heuristics_as_documented():
    instances = [inst for name in ("bfcl.jsonl", "toolalpaca_eval.jsonl", "toolbench_answers.jsonl")
                 for inst in read_instances(DATA / name)]
    judges = set()
    for inst in instances:
        rows = offline_rows(inst)
        assert rows == _merged_reference(inst), inst.id
        judges.update(row.judge for row in rows)
    assert judges == {"rules", "heuristic"}


def test_verdict_row_values_are_its_columns():
    scored = VerdictRow("i", "coherence", 1, Status.OK, "heuristic", "h.v2", "why", [{"x": 1}])
    unscored = VerdictRow("i", "coherence", None, Status.UNSCORED_NEEDS_MODEL, "rules", "r.v1")
    voted = VerdictRow("i", "coherence", 0, "", "panel", "p", vote_share=0.75, vote_count=4)
    for row in (scored, unscored, voted):
        expected = attrgetter(*VERDICT_COLUMNS)(row)
        assert row.values()[:8] == expected[:8] and row.values()[9] == expected[9]
        assert str(row.values()[8]) == str(expected[8])  # NaN for unscored
    assert scored.values()[8:] == (1.0, 1) and voted.values()[8:] == (0.75, 4) and unscored.values()[9] == 0



def test_decision_values_are_the_values_of_its_row():
    """``check`` writes ``Decision.values`` tuples instead of rows: the same cells, and the same table."""
    import math

    from toolqual_utils.heuristics import offline_decisions
    from toolqual_utils.verdicts import Decision, verdict_frame

    decisions = [
        Decision(1, Status.OK, "why", [{"x": 1}]), Decision(0, Status.OK, "", []),
        Decision(None, Status.UNSCORED_NEEDS_MODEL, "model", []), Decision(1, Status.UNSCORED_NOT_APPLICABLE, "", []),
        Decision(2, Status.OK, "odd", []),
    ]
    for decision in decisions:
        from_row = decision.row("i", "coherence", "rules", "r.v1").values()
        direct = decision.values("i", "coherence", "rules", "r.v1")
        assert direct[:8] == from_row[:8] and direct[9] == from_row[9], decision
        assert direct[8] == from_row[8] or (math.isnan(direct[8]) and math.isnan(from_row[8]))
    instances = read_instances(DATA / "toolalpaca_eval.jsonl")[:40]
    rows = [row for inst in instances for row in offline_rows(inst)]
    values = [d.values(inst.id, c, j, p) for inst in instances for c, j, p, d in offline_decisions(inst)]
    assert verdict_frame(values).equals(verdict_frame(rows))

def test_open_arguments_drop_a_claimed_argument():
    inst = Instance.model_validate({
        "id": "t/1", "source": "t", "instruction": "Convert 10 USD to EUR",
        "tools": [{"name": "convert", "parameters": {"type": "object", "properties": {
            "amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}}}],
        "calls": [{"name": "convert", "arguments": {"amount": 10, "from": "USD", "to": "EUR"}}]})
    call = CallScan(InstanceScan(inst), 0, inst.calls[0])
    assert [a.name for a in call.open_arguments()] == ["amount", "from", "to"]
    call.claim("from")
    assert [a.name for a in call.open_arguments()] == ["amount", "to"]


def test_csv_rows_built_with_string_methods_equal_the_csv_module():
    """``encode_rows`` builds most CSV lines itself; they must be the bytes ``csv.writer`` writes for the
    same cells (minimal quoting, formulas escaped, lists/dicts as JSON, None empty), whatever the text holds.
    Rows it does not cover (a carriage return, another type, one cell) go to the writer."""
    import csv
    import io

    import numpy as np

    from toolqual_utils.io import _csv_cell, _csv_line, encode_rows

    rng = random.Random(11)
    texts = SAMPLES[:600] + ['say "hi"', "a,b", "line\nbreak", "cr\rhere", "=1+1", "'=x", "-", "@", "", "\t"]
    others = [None, 0, 1, -7, 2.5, float("nan"), True, [], {}, [{"check": "x", "value": 'a "b", c'}], {"k": 1},
              np.int64(3), ("t", 1)]
    rows = [[rng.choice(texts) if rng.random() < 0.6 else rng.choice(others) for _ in range(rng.randint(1, 6))]
            for _ in range(3000)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([_csv_cell(value) for value in row] for row in rows)
    assert encode_rows(rows, ".csv", ["c"] * 6) == buffer.getvalue()
    built = [row for row in rows if _csv_line(row) is not None]
    assert len(built) > len(rows) / 3  # the string-built way serves most rows, not only the writer


def test_check_csv_is_the_text_pandas_writes_for_the_same_verdicts():
    """``check`` writes its verdict CSV from tuples; the text must be what the pandas writer (``judge``'s
    tables) writes for the same rows: unscored verdicts' confidence (NaN) an empty cell, not ``nan``."""
    from toolqual_utils.heuristics import offline_decisions
    from toolqual_utils.io import encode_rows, encode_table
    from toolqual_utils.verdicts import verdict_frame

    rows = []
    for name in ("bfcl.jsonl", "seal_tools_dev.jsonl", "toolalpaca_eval.jsonl", "toolbench_queries.jsonl"):
        for inst in read_instances(DATA / name)[:150]:
            rows.extend(d.values(inst.id, c, j, p) for c, j, p, d in offline_decisions(inst))
    assert any(row[8] != row[8] for row in rows) and any(row[8] == 1.0 for row in rows)  # both kinds present
    text = encode_rows(rows, ".csv", VERDICT_COLUMNS)
    assert text == encode_table(verdict_frame(rows), ".csv")
    assert ",nan," not in text


def test_json_cells_are_json_dumps():
    """Lists and dicts in CSV cells are written by the json module's C encoder, built once: the text of
    ``json.dumps(value, ensure_ascii=False)``."""
    import json

    from toolqual_utils.io import _JSON_CELL

    values = [[], {}, [{"check": "x", "value": 'a "b", ç', "n": 1.5, "none": None, "t": True}], {"k": [1, {"z": "€"}]},
              {1: "int key", "nan": float("nan")}, ["\u2028", "\x00", "\ud83d\ude00"], [10**30, -0.0]]
    for value in values:
        assert _JSON_CELL(value) == json.dumps(value, ensure_ascii=False)
