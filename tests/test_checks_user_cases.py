"""Offline checks a user expected to fire on flaws planted in their own file (issue 8), and what they must
leave alone. Each case failed before the fix it names."""
from __future__ import annotations

import pytest

from toolqual_utils.checks import find_issues, run_checks
from toolqual_utils.heuristics import offline_verdicts
from toolqual_utils.schema import Instance
from toolqual_utils.verdicts import Status

MOVIES = {"name": "search_movies", "description": "Search movies by genre, optionally by actor.",
          "parameters": {"type": "object", "properties": {
              "genre": {"type": "string"}, "actor": {"type": "string", "description": "Actor name"}},
              "required": ["genre"]}}
WEATHER = {"name": "get_weather", "description": "Current weather for a city.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string"}, "unit": {"type": "string", "description": "C or F"}},
               "required": ["city"]}}
CURRENCY = {"name": "convert_currency", "description": "Convert an amount between currencies.",
            "parameters": {"type": "object", "properties": {
                "amount": {"type": "number"}, "from_currency": {"type": "string"}, "to_currency": {"type": "string"}},
                "required": ["amount", "from_currency", "to_currency"]}}
FLIGHTS = {"name": "book_flight", "description": "Book a flight.",
           "parameters": {"type": "object", "properties": {
               "origin": {"type": "string"}, "destination": {"type": "string"}, "date": {"type": "string"},
               "seat": {"type": "string", "enum": ["aisle", "window"]}},
               "required": ["origin", "destination", "date"]}}
NEWS = {"name": "get_news", "description": "Latest news headlines on a topic.",
        "parameters": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}}


def make(instruction, calls, tools, iid="u/case/1"):
    return Instance.model_validate({"id": iid, "source": "u", "instruction": instruction, "tools": tools,
                                    "calls": calls})


def fired(instance, check, severity=None):
    return [f for f in find_issues([instance]) if f.check == check and (severity is None or f.severity == severity)]


# --- initials: a whole instruction word, never the prefix of a common word --------------------------------


def test_tom_hanks_is_not_grounded_by_the_word_the():
    inst = make("Find me the best comedy movies of the nineties.",
                [{"name": "search_movies", "arguments": {"genre": "comedy", "actor": "Tom Hanks"}}], [MOVIES])
    (finding,) = fired(inst, "ungrounded_value")  # "th" (Tom Hanks) used to match "the"
    assert finding.argument == "actor" and finding.severity == "error"


@pytest.mark.parametrize("value, instruction", [
    ("New York City", "What's the weather in NYC right now?"),
    ("San Francisco", "Weather in SF, please"),
    ("United States", "Weather in the capital of the US"),
])
def test_initials_written_as_a_word_still_ground_a_value(value, instruction):
    inst = make(instruction, [{"name": "get_weather", "arguments": {"city": value}}], [WEATHER])
    assert not fired(inst, "ungrounded_value")


def test_initials_that_are_a_common_lower_case_word_do_not_ground():
    inst = make("Tell us the weather there, and tell us in Celsius.",
                [{"name": "get_weather", "arguments": {"city": "United States", "unit": "C"}}], [WEATHER])
    assert [f.argument for f in fired(inst, "ungrounded_value")][:1] == ["city"]  # "us" is a pronoun here


# --- the message of a short value that does not appear --------------------------------------------------


def test_a_short_value_that_does_not_appear_is_not_called_partly_supported():
    inst = make("What's the weather in Paris?", [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}],
                [WEATHER])
    (finding,) = fired(inst, "ungrounded_value")
    assert finding.severity == "suspect" and finding.argument == "unit"
    assert "partly" not in finding.message and "0/1" not in finding.message
    assert "'C' does not appear in the instruction" in finding.message


# --- sufficiency: an offered tool clearly matches a request no call serves --------------------------------


def test_unserved_request_for_an_offered_tool_is_a_sufficiency_error():
    inst = make("What's the weather in Madrid, and convert 50 USD to EUR",
                [{"name": "get_weather", "arguments": {"city": "Madrid"}}], [WEATHER, CURRENCY])
    (finding,) = fired(inst, "unserved_request")
    assert finding.severity == "error" and finding.function == "convert_currency"
    assert "convert 50 USD to EUR" in finding.message
    assert finding.expected["request"] == "convert 50 USD to EUR"
    assert set(finding.expected["parameters"]) == {"amount", "from_currency", "to_currency"}
    row = run_checks([inst]).set_index("criterion").loc["sufficiency"]
    assert row["label"] == 0 and row["status"] == Status.OK and row["evidence"][0]["check"] == "unserved_request"


@pytest.mark.parametrize("instruction, calls", [
    # served: a call for each request
    ("What's the weather in Madrid, and convert 50 USD to EUR",
     [{"name": "get_weather", "arguments": {"city": "Madrid"}},
      {"name": "convert_currency", "arguments": {"amount": 50, "from_currency": "USD", "to_currency": "EUR"}}]),
    # the tool's words appear, but the request gives none of its values (nothing to convert)
    ("What's the weather in Madrid, and which currency do they use?",
     [{"name": "get_weather", "arguments": {"city": "Madrid"}}]),
    # a single request
    ("Convert the temperature in Madrid to Celsius for me",
     [{"name": "get_weather", "arguments": {"city": "Madrid", "unit": "C"}}]),
])
def test_unserved_request_stays_quiet_when_the_request_is_served_or_unclear(instruction, calls):
    assert not fired(make(instruction, calls, [WEATHER, CURRENCY]), "unserved_request")


# --- specificity: a short instruction that states none of the called tool's required values -------------


def test_book_me_a_flight_is_a_specificity_error():
    inst = make("Book me a flight.", [{"name": "book_flight", "arguments": {
        "origin": "JFK", "destination": "LAX", "date": "2024-06-01", "seat": "aisle"}}], [FLIGHTS])
    (finding,) = fired(inst, "required_values_unstated")
    assert finding.severity == "error" and finding.function == "book_flight"
    assert set(finding.expected) == {"origin", "destination", "date"}
    verdicts = offline_verdicts([inst]).set_index("criterion")
    assert verdicts.loc["specificity", "label"] == 0 and verdicts.loc["specificity", "judge"] == "rules"


@pytest.mark.parametrize("instruction, arguments", [
    ("Book me a flight from New York to Los Angeles.", {"origin": "JFK", "destination": "LAX", "date": "2024-06-01"}),
    ("Book me a flight for tomorrow.", {"origin": "JFK", "destination": "LAX", "date": "2024-06-01"}),
    ("I need to fly from Boston to Denver on the first of June, on any airline, in the morning if possible, "
     "and please book an aisle seat.", {"origin": "JFK", "destination": "LAX", "date": "2024-06-01"}),
])
def test_required_values_unstated_needs_every_value_missing_from_a_short_instruction(instruction, arguments):
    assert not fired(make(instruction, [{"name": "book_flight", "arguments": arguments}], [FLIGHTS]),
                     "required_values_unstated")


def test_one_required_value_is_not_enough_to_decide():
    inst = make("Any news?", [{"name": "get_news", "arguments": {"topic": "technology"}}], [NEWS])
    assert not fired(inst, "required_values_unstated")


# --- the summary of `toolqual check` shows the suspects ---------------------------------------------------


def test_check_summary_names_the_instances_with_the_most_suspects(tmp_path, capsys):
    from toolqual_utils.cli import main

    suspect = make("Find comedy movies with the actor from Forrest Gump, in a language I like.",
                   [{"name": "search_movies", "arguments": {"genre": "comedy", "actor": "Tom Hanks"}},
                    {"name": "get_weather", "arguments": {"city": "Greenbow"}}], [MOVIES, WEATHER], iid="u/s/1")
    clean = make("Find comedy movies.", [{"name": "search_movies", "arguments": {"genre": "comedy"}}], [MOVIES],
                 iid="u/s/2")
    data = tmp_path / "d.jsonl"
    data.write_text(suspect.model_dump_json() + "\n" + clean.model_dump_json() + "\n", encoding="utf-8")
    assert main(["check", str(data), "--out", str(tmp_path / "v.csv")]) == 0
    out = capsys.readouterr().out
    assert "suspect findings on 1 instances" in out and "u/s/1 (" in out and "Greenbow" in out
