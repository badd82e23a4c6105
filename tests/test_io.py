"""Canonical JSONL and result-table I/O."""
import json

import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.io import Reject, iter_canonical, read_instances, read_table, write_instances, write_table
from toolqual_utils.schema import parse_instance

GOOD = {"id": "t/a/1", "source": "t", "instruction": "Book a table for 2 at Nopa."}


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_lines_become_rejects_and_good_lines_survive(tmp_path):
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [json.dumps(GOOD), "{not json", "[1, 2]", "", json.dumps({**GOOD, "id": "t/a/2", "calls": "x"}),
         json.dumps({**GOOD, "id": "t/a/3"})],
    )
    items = list(iter_canonical(path))
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [i.id for i in items if not isinstance(i, Reject)] == ["t/a/1", "t/a/3"]
    assert [r.location for r in rejects] == ["line 2", "line 3", "line 5"]
    assert rejects[2].field == "calls" and rejects[2].record_id == "t/a/2"
    assert all(r.file == str(path) for r in rejects)


def test_strict_read_names_file_line_and_field(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), json.dumps({**GOOD, "instruction": 3})])
    with pytest.raises(InputError) as info:
        read_instances(path, strict=True)
    message = str(info.value)
    assert str(path) in message and "line 2" in message and "instruction" in message


def test_not_utf8_and_missing_file_are_input_errors(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps({**GOOD, "instruction": "café"}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_instances(path)
    with pytest.raises(InputError, match="no such file"):
        read_instances(tmp_path / "absent.jsonl")


def test_write_then_read_round_trips_unicode(tmp_path):
    inst = parse_instance({**GOOD, "instruction": "Übersetze «bonjour» → 日本語"})
    out = tmp_path / "sub" / "out.jsonl"
    assert write_instances([inst], out) == 1
    assert read_instances(out, strict=True) == [inst]
    assert "日本語" in out.read_text(encoding="utf-8")  # written as UTF-8, not \u escapes


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_tables_round_trip_by_extension(tmp_path, suffix):
    frame = pd.DataFrame({"instance_id": ["a", "b"], "label": [1, 0], "evidence": [[{"call": 0}], []]})
    path = write_table(frame, tmp_path / f"verdicts{suffix}")
    back = read_table(path)
    assert back["instance_id"].tolist() == ["a", "b"]
    assert back["label"].tolist() == [1, 0]
    evidence = back["evidence"].tolist()
    if suffix != ".jsonl":
        evidence = [json.loads(e) for e in evidence]
    assert evidence == [[{"call": 0}], []]


def test_unknown_table_extension_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"\.xlsx.*\.jsonl, \.csv, \.parquet"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.xlsx")
