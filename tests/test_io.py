"""Canonical JSONL and result-table I/O: strict JSON, per-record limits, atomic outputs, CSV escaping."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from toolqual_utils.errors import InputError
from toolqual_utils.io import (
    Reject,
    atomic_open,
    csv_escape,
    csv_unescape,
    iter_canonical,
    read_instances,
    read_table,
    write_instances,
    write_table,
)
from toolqual_utils.schema import parse_instance
from conftest import REFERENCE_INSTANCES

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


# ----------------------------------------------------------------------------------------- strict JSON
@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"id": "t/a/9", "source": "t", "instruction": NaN}', "NaN is not a JSON number"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": Infinity}}', "Infinity is not a JSON number"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": -Infinity}}', "-Infinity is not a JSON number"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": 1e999999}}', "1e999999 is too large"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "instruction": "y"}', "'instruction' appears twice"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": ' + "[" * 10_000 + "]" * 10_000 + "}}",
         "nested too deeply"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": ' + "[" * 300 + "]" * 300 + "}}",
         "nested more than 200 levels deep (at meta.v"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"v": ' + "7" * 4301 + "}}",
         "more than 4,300 digits"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x\\ud800"}', "unpaired UTF-16 surrogate (\\ud800-\\udfff), "
         "which is not text (at instruction)"),
        ('{"id": "t/a/9", "source": "t", "instruction": "x", "meta": {"\\udc00": 1}}', "a key holds an unpaired"),
    ],
)
def test_what_would_change_silently_or_crash_is_a_reject_with_the_reason(tmp_path, line, reason):
    path = write_lines(tmp_path / "x.jsonl", [json.dumps(GOOD), line, json.dumps({**GOOD, "id": "t/a/3"})])
    items = list(iter_canonical(path))
    assert [i.id for i in items if not isinstance(i, Reject)] == ["t/a/1", "t/a/3"]
    [reject] = [i for i in items if isinstance(i, Reject)]
    assert reject.location == "line 2" and reason in reject.reason


def test_paired_surrogate_escapes_and_big_but_finite_numbers_are_fine(tmp_path):
    line = '{"id": "t/a/9", "source": "t", "instruction": "smile \\ud83d\\ude00", "meta": {"n": 1e308, "i": ' \
           + "9" * 300 + "}}"
    [instance] = read_instances(write_lines(tmp_path / "x.jsonl", [line]), strict=True)
    assert instance.instruction == "smile \U0001F600" and instance.meta["i"] == int("9" * 300)


def test_a_line_over_the_limit_is_skipped_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLQUAL_MAX_LINE_BYTES", "1000")
    long_line = json.dumps({**GOOD, "id": "t/a/2", "instruction": "x" * 5000})
    path = write_lines(tmp_path / "x.jsonl", [json.dumps(GOOD), long_line, json.dumps({**GOOD, "id": "t/a/3"})])
    items = list(iter_canonical(path))
    assert [i.id for i in items if not isinstance(i, Reject)] == ["t/a/1", "t/a/3"]
    [reject] = [i for i in items if isinstance(i, Reject)]
    assert reject.location == "line 2" and "longer than the limit of 1,000 bytes" in reject.reason


def test_a_value_over_the_size_limit_is_a_reject(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLQUAL_MAX_VALUE_CHARS", "100")
    path = write_lines(tmp_path / "x.jsonl", [json.dumps({**GOOD, "instruction": "y" * 101})])
    [reject] = list(iter_canonical(path))
    assert "a value of 101 characters is over the limit of 100" in reject.reason and "(at instruction)" in reject.reason


def test_devices_and_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_instances(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputError, match="is a device"):
            read_instances("/dev/zero")


def _peak_rss_mib(command: list[str]) -> tuple[int, float, str]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, err


@pytest.mark.slow
def test_memory_stays_flat_on_a_200_mb_line(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(GOOD) + "\n")
        handle.write('{"id": "t/a/2", "source": "t", "instruction": "')
        for _ in range(200):
            handle.write("a" * (1 << 20))
        handle.write('"}\n')
    small = write_lines(tmp_path / "small.jsonl", [json.dumps(GOOD)])
    cli = [sys.executable, "-m", "toolqual_utils.cli"]
    code, baseline, err = _peak_rss_mib([*cli, "check", str(small), "--out", str(tmp_path / "a.csv")])
    assert code == 0, err
    for command in (["check", str(path), "--out", str(tmp_path / "b.csv")],
                    ["load", str(path), "--out", str(tmp_path / "c.jsonl")]):
        code, peak, err = _peak_rss_mib([*cli, *command])
        assert code == 0, err
        # the 200 MB line is never held: at most one line-limit buffer (32 MiB) and its copy above start-up
        assert peak - baseline < 100, (command, peak, baseline)


# ----------------------------------------------------------------------------------------- atomic outputs
def test_a_failed_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "verdicts.csv"
    target.write_text("old,content\n", encoding="utf-8")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic_open(target) as handle:
            handle.write("partial")
            raise Boom
    assert target.read_text(encoding="utf-8") == "old,content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["verdicts.csv"]  # the temporary file is gone


def test_kill_9_mid_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "verdicts.csv"
    target.write_text("old,content\n", encoding="utf-8")
    script = ("import sys, time\nfrom toolqual_utils.io import atomic_open\n"
              "with atomic_open(sys.argv[1]) as handle:\n"
              "    handle.write('new,' * 100000); handle.flush()\n"
              "    print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert target.read_text(encoding="utf-8") == "old,content\n"


def test_check_out_under_kill_9_is_the_old_file_or_the_complete_new_one(tmp_path):
    """`check --out` killed at the moment its output is being written: never a truncated table."""
    source = [json.loads(line) for line in REFERENCE_INSTANCES.read_text(encoding="utf-8").splitlines()]
    data = tmp_path / "data.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for i in range(3000):
            handle.write(json.dumps({**source[i % len(source)], "id": f"copy/{i}"}) + "\n")
    out = tmp_path / "verdicts.csv"
    out.write_text("old\n", encoding="utf-8")
    outcomes = set()
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "toolqual_utils.cli", "check", str(data), "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not list(tmp_path.glob(".verdicts.csv.*.tmp")):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        text = out.read_text(encoding="utf-8")
        if text == "old\n":
            outcomes.add("old")
        else:
            assert len(read_table(out)) == 3000 * 6  # complete, never a prefix
            outcomes.add("new")
        for leftover in tmp_path.glob(".verdicts.csv.*.tmp"):
            leftover.unlink()
    assert "old" in outcomes  # the kill landed mid-write at least once


# ----------------------------------------------------------------------------------------- CSV formulas
def test_csv_cells_a_spreadsheet_would_run_are_escaped_and_read_back_raw(tmp_path):
    values = ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tx", "'=already quoted", "plain", "'apostrophe", "a=b"]
    frame = pd.DataFrame({"instance_id": values, "label": range(len(values))})
    path = write_table(frame, tmp_path / "v.csv")
    cells = [line.split(",")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert cells[:6] == ["'=1+1", "'+SUM(A1)", "'-2", "'@cmd", "'\tx", "''=already quoted"]
    assert cells[6:] == ["plain", "'apostrophe", "a=b"]
    assert read_table(path)["instance_id"].tolist() == values
    assert read_table(write_table(frame, tmp_path / "v.parquet"))["instance_id"].tolist() == values  # raw there
    assert [csv_unescape(csv_escape(v)) for v in values] == values
