"""Per-format profile tables (toolqual_utils.profile: turns_frame, format_profile, turns_per_dialogue,
calls_per_turn, rejected_by_format) on the hand-written fixtures of every training-set format."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from toolqual_utils import profile
from toolqual_utils.io import read_instances
from toolqual_utils.loaders import formats_of, load
from conftest import REFERENCE_INSTANCES, ROOT

FORMATS_DIR = ROOT / "tests" / "fixtures" / "formats"


@pytest.fixture(scope="module")
def loaded():
    by_file, formats, rejects = {}, {}, []
    for path in sorted(FORMATS_DIR.iterdir()):
        result = load(path)
        by_file[str(path)] = result.instances
        formats[str(path)] = result.summary.iloc[0]["format"]
        rejects.append(pd.DataFrame([r.to_record() for r in result.rejects]))
    return by_file, formats, rejects


def test_format_profile_counts_dialogues_turns_parallel_calls_failures_and_rejects(loaded):
    by_file, formats, rejects = loaded
    turns = profile.turns_frame(by_file)
    rejected = profile.rejected_by_format(rejects, formats_of(profile.reject_source_files(rejects)))
    assert rejected == {"glaive": 1, "openai": 1, "sharegpt": 1, "toolace": 1, "toolllama": 1, "xlam": 2}
    table = profile.format_profile(turns, rejected).set_index("format")
    assert list(table.columns) == list(profile.FORMAT_PROFILE_COLUMNS)[1:]
    # ToolACE: 4 dialogues, 5 instances (the hotel dialogue gives turn2 and turn3, both with context)
    toolace = table.loc["toolace"]
    assert (toolace["n_dialogues"], toolace["n_instances"], toolace["n_multi_turn"], toolace["max_user_turns"]) == (4, 5, 2, 3)
    assert toolace["n_parallel_turns"] == 1 and toolace["n_parse_failures"] == 1 and toolace["n_rejected"] == 1
    # Hermes and LLaMA-Factory files are both "sharegpt": 7 dialogues, 8 instances, 2 parallel turns
    sharegpt = table.loc["sharegpt"]
    assert (sharegpt["n_dialogues"], sharegpt["n_instances"], sharegpt["n_parallel_turns"]) == (7, 8, 2)
    assert math.isclose(sharegpt["mean_calls_per_turn"], 9 / 8)
    xlam = table.loc["xlam"]
    assert (xlam["n_instances"], xlam["mean_user_turns"], xlam["n_parse_failures"], xlam["n_rejected"]) == (5, 1.0, 1, 2)
    assert table.loc["toolllama", "n_dialogues"] == 3  # the three step records of one query are one dialogue


def test_turns_and_calls_distributions(loaded):
    by_file, _formats, _rejects = loaded
    turns = profile.turns_frame(by_file)
    per_dialogue = profile.turns_per_dialogue(turns)
    glaive = per_dialogue[per_dialogue["format"] == "glaive"].set_index("value")["n"].to_dict()
    assert glaive == {1: 3, 3: 1}
    assert per_dialogue.groupby("format")["share"].sum().round(9).eq(1).all()
    per_turn = profile.calls_per_turn(turns)
    xlam = per_turn[per_turn["format"] == "xlam"].set_index("value")["n"].to_dict()
    assert xlam == {0: 1, 1: 3, 2: 1}


def test_formats_of_a_raw_file_win_over_the_source_name(loaded):
    by_file, formats, _rejects = loaded
    turns = profile.turns_frame(by_file, formats)
    assert set(turns["format"]) == {"glaive", "openai", "sharegpt", "toolace", "toolllama", "xlam"}
    assert profile.format_of(by_file[str(FORMATS_DIR / "hermes_sample.json")][0]) == "sharegpt"  # source "hermes"


def test_single_turn_data_profiles_as_one_turn_per_dialogue():
    turns = profile.turns_frame({"ref": read_instances(REFERENCE_INSTANCES, strict=True)})
    table = profile.format_profile(turns)
    assert set(table["max_user_turns"]) == {1} and set(table["n_multi_turn"]) == {0}
    assert (table["n_dialogues"] == table["n_instances"]).all()
    assert set(table["format"]) == {"bfcl", "seal_tools", "toolalpaca", "toolbench"}  # stabletoolbench -> toolbench
    assert table["n_rejected"].sum() == 0


def test_empty_inputs_give_empty_tables_with_columns():
    turns = profile.turns_frame({})
    assert list(turns.columns) == list(profile.TURN_COLUMNS)
    assert list(profile.format_profile(turns).columns) == list(profile.FORMAT_PROFILE_COLUMNS)
    assert profile.turns_per_dialogue(turns).empty and profile.calls_per_turn(turns).empty
    only_rejects = profile.format_profile(turns, {"xlam": 3})
    assert only_rejects.to_dict("records")[0]["n_rejected"] == 3
    assert formats_of(["/no/such/file.json"]) == {"/no/such/file.json": "unknown"}
