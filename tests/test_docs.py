"""The documentation stays true: links resolve, nothing points outside the repository, examples exist.

- Every relative link in README.md, docs/*.md and the data/ READMEs (and reports/README.md) names a
  file in the repository, and a ``#fragment`` into a Markdown file names one of its headings or anchors.
- No tracked text file mentions the development workspace or documents a user does not have.
- Every instance id that docs/annotation_guide.md quotes exists in the bundled data; every example
  marked "holds"/"error" agrees with the adjudicated reference label, and its quoted excerpts are
  really in that instance; each criterion has an example of both; the rulings R1..R14 are all there.
- docs/format.md names the columns, fields, statuses and source formats the code really has, and each
  source-format example command loads a repository file in that format.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
import unicodedata
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ANNOTATIONS, DATA, DOCS, ROOT

GUIDE = DOCS / "annotation_guide.md"
FORMAT = DOCS / "format.md"

#: Mentions of files a user's clone does not have (split so that this file does not match itself).
FORBIDDEN = (
    "../" + "shared", "/work/" + "shared",
    "ANNOTATION_GUIDE" + ".md", "METHOD" + ".md", "DESIGN" + ".md", "STYLE" + ".md", "SOURCES" + ".md",
)
#: Folders never searched when git is not available (build products, environments).
_UNTRACKED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", "_work", ".ipynb_checkpoints"}

CRITERIA = ("specificity", "coherence", "solvability", "parameter_alignment", "sufficiency", "minimality")
ID_PREFIXES = ("toolalpaca/", "toolbench/", "stabletoolbench/", "seal_tools/", "bfcl/")
N_RULINGS = 14


# --- helpers --------------------------------------------------------------------------------------

def tracked_files() -> list[Path]:
    """Files under version control (``git ls-files``); without git, every file outside build folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        names = [name for name in out.decode("utf-8").split("\0") if name]
        if names:
            return [ROOT / name for name in names if (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & _UNTRACKED_DIRS and not any(p.endswith(".egg-info") for p in parts):
            files.append(path)
    return files


def markdown_pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), *sorted(DATA.rglob("README.md"))]
    if (ROOT / "reports" / "README.md").exists():
        pages.append(ROOT / "reports" / "README.md")
    return pages


def strip_code(text: str) -> str:
    """Markdown text with fenced code blocks and inline code spans blanked (links there are examples)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "``", text)


def heading_slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(page: Path) -> frozenset[str]:
    text = page.read_text(encoding="utf-8")
    found: set[str] = set()
    counts: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if line.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and not in_fence:
            slug = heading_slug(match.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    found.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return frozenset(found)


def links(page: Path) -> list[str]:
    text = strip_code(page.read_text(encoding="utf-8"))
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.M)
    targets += re.findall(r"href=\"([^\"]+)\"", text)
    return targets


@lru_cache(maxsize=1)
def known_instances() -> dict[str, dict]:
    """Every instance the repository ships: bundled data, annotation splits, bundled judge runs."""
    # the *.rejects.jsonl files `make data` leaves beside the data are rejected lines, not instances
    files = [*sorted(p for p in DATA.glob("*.jsonl") if not p.name.endswith(".rejects.jsonl")),
             *sorted(ANNOTATIONS.glob("*_instances.jsonl")),
             *sorted((DATA / "judge_runs").glob("*/instances.jsonl"))]
    records: dict[str, dict] = {}
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    records.setdefault(record["id"], record)
    return records


@lru_cache(maxsize=1)
def adjudicated() -> dict[str, dict[str, int]]:
    labels: dict[str, dict[str, int]] = {}
    for path in sorted(ANNOTATIONS.glob("reference_dev*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["annotator"] == "adjudicated":
                    labels[row["instance_id"]] = {c: int(row[c]) for c in CRITERIA if row[c] != ""}
    return labels


def _norm(text: str) -> str:
    return " ".join(text.split())


def quoted_ids(text: str) -> list[str]:
    spans = re.findall(r"`([^`\n]+)`", text)
    return [s for s in spans if s.startswith(ID_PREFIXES) and s.count("/") >= 2 and not s.endswith("/")
            and "<" not in s]


def examples(text: str) -> list[dict]:
    """The example bullets of the guide: ``- **holds|error[ (criterion)]** — `id`: text``.

    The criterion is the one in the marker, else the one of the enclosing ``### <Criterion>`` section.
    """
    headings = {c.replace("_", " "): c for c in CRITERIA}
    found = []
    section = None
    current = None
    for line in text.splitlines() + [""]:
        heading = re.match(r"^#{2,3}\s+(.*)$", line)
        if heading:
            section = headings.get(heading.group(1).strip().lower())
        bullet = re.match(r"^- \*\*(holds|error)(?: \(([a-z_]+)\))?\*\* — `([^`]+)`(.*)$", line)
        if current is not None and (bullet or not line.startswith("  ") or not line.strip()):
            found.append(current)
            current = None
        if bullet:
            current = {"mark": bullet.group(1), "criterion": bullet.group(2) or section,
                       "id": bullet.group(3), "text": bullet.group(4), "line": line}
        elif current is not None:
            current["text"] += " " + line.strip()
    return found


# --- links and pointers ---------------------------------------------------------------------------

def test_every_relative_link_resolves_to_a_repository_file():
    problems = []
    n_links = 0
    for page in markdown_pages():
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            n_links += 1
            path_part, _, fragment = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve():
                problems.append(f"{where} points outside the repository")
            elif not resolved.exists():
                problems.append(f"{where} names a file that does not exist")
            elif fragment and resolved.suffix == ".md" and fragment.lower() not in anchors(resolved):
                problems.append(f"{where} names no heading or anchor of {resolved.relative_to(ROOT)}")
    assert n_links >= 40, f"only {n_links} relative links found: is the link pattern still right?"
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_heading_slugs_follow_github():
    assert heading_slug("Rulings on hard cases (one error, one owner)") == "rulings-on-hard-cases-one-error-one-owner"
    assert heading_slug("Source formats `toolqual load` reads") == "source-formats-toolqual-load-reads"
    assert heading_slug("Intrinsic quality: six yes/no criteria") == "intrinsic-quality-six-yesno-criteria"
    assert heading_slug("`calls: null` versus `calls: []`") == "calls-null-versus-calls-"


def test_no_tracked_file_points_outside_the_repository():
    files = tracked_files()
    assert any(f.name == "README.md" for f in files) and len(files) > 100
    hits = []
    for path in files:
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        text = data.decode("utf-8", errors="replace")
        for needle in FORBIDDEN:
            start = text.find(needle)
            if start >= 0:
                line = text.count("\n", 0, start) + 1
                hits.append(f"{path.relative_to(ROOT)}:{line}: mentions {needle!r}")
    assert not hits, ("files point at documents a user's clone does not have (use docs/annotation_guide.md, "
                      "docs/method.md, docs/format.md or data/sources/README.md):\n" + "\n".join(hits))


def test_the_docs_index_lists_every_docs_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            assert f"({page.name})" in index, f"docs/README.md does not link {page.name}"


# --- the annotation guide's examples --------------------------------------------------------------

def test_every_instance_id_quoted_in_the_annotation_guide_exists():
    text = GUIDE.read_text(encoding="utf-8")
    ids = quoted_ids(text)
    assert len(set(ids)) >= 40, f"only {len(set(ids))} instance ids found in the guide"
    missing = sorted({i for i in ids if i not in known_instances()})
    assert not missing, f"docs/annotation_guide.md quotes ids that are in no bundled file: {missing}"


def test_guide_examples_agree_with_the_reference_labels_and_quote_the_instance():
    found = examples(GUIDE.read_text(encoding="utf-8"))
    assert len(found) >= 50
    problems = []
    for example in found:
        instance_id, criterion = example["id"], example["criterion"]
        if criterion not in CRITERIA:
            problems.append(f"{instance_id}: example outside a criterion section and without '(criterion)'")
            continue
        record = known_instances().get(instance_id)
        if record is None:
            problems.append(f"{instance_id}: not in the bundled data")
            continue
        label = adjudicated().get(instance_id, {}).get(criterion)
        if label is not None and label != (1 if example["mark"] == "holds" else 0):
            problems.append(f"{instance_id}: shown as '{example['mark']}' for {criterion}, but the adjudicated "
                            f"label is {label}")
        haystack = _norm(record["instruction"] + " " + " ".join(
            (call.get("raw_arguments") or "") + " " + json.dumps(call.get("arguments"), ensure_ascii=False)
            for call in record.get("calls") or []))
        prose = re.sub(r"`[^`]*`", "", example["text"])
        for quote in re.findall(r"\"([^\"]+)\"", prose):
            if len(quote.strip()) >= 3 and _norm(quote) not in haystack:
                problems.append(f"{instance_id}: quoted text {quote!r} is not in the instance")
    assert not problems, "\n".join(problems)


def test_guide_has_an_example_of_each_label_for_each_criterion():
    found = examples(GUIDE.read_text(encoding="utf-8"))
    for criterion in CRITERIA:
        marks = {e["mark"] for e in found if e["criterion"] == criterion}
        assert marks == {"holds", "error"}, f"{criterion}: examples of {sorted(marks)} only"


def test_guide_states_every_ruling_with_a_citable_anchor():
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Rulings on hard cases (one error, one owner)", 1)[1].split("\n## ", 1)[0]
    numbers = [int(n) for n in re.findall(r"^\*\*R(\d+)\. ", section, flags=re.M)]
    assert numbers == list(range(1, N_RULINGS + 1))
    for n in numbers:
        assert f'<a id="r{n}"></a>' in section
    for topic in ("#not_needed", "#credential", "<REDACTED_CREDENTIAL>", "Multi-turn", "placeholder"):
        assert topic in section


def test_guide_and_format_show_the_annotation_file_header_the_code_writes():
    from toolqual_utils.annotations import ANNOTATION_FILE_COLUMNS

    header = ",".join(ANNOTATION_FILE_COLUMNS)
    assert header in GUIDE.read_text(encoding="utf-8")
    assert header in FORMAT.read_text(encoding="utf-8")


# --- the format page ------------------------------------------------------------------------------

def _table_cells(text: str, first_header: str) -> list[list[str]]:
    """Rows of the first Markdown table whose header row starts with ``| first_header |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_format_page_names_the_fields_columns_and_statuses_the_code_has():
    from toolqual_utils import llm
    from toolqual_utils.ice.score import INSTANCE_COLUMNS
    from toolqual_utils.schema import Call, Instance, ToolSpec, VERDICT_COLUMNS
    from toolqual_utils.verdicts import Status

    text = FORMAT.read_text(encoding="utf-8")
    fields = {row[0].strip("`") for row in _table_cells(text, "field")}
    assert set(Instance.model_fields) <= fields
    for name in [*Call.model_fields, *ToolSpec.model_fields]:
        assert f"`{name}`" in text or f'"{name}"' in text, name
    verdict_columns = [row[0].strip("`") for row in _table_cells(text, "column")]
    assert verdict_columns == list(VERDICT_COLUMNS)
    for column in INSTANCE_COLUMNS:
        assert f"`{column}`" in text, f"ICE column {column} is not described"
    for status in (llm.STATUS_REFUSAL, llm.STATUS_TRUNCATED, llm.STATUS_API_ERROR, llm.STATUS_NOT_CACHED,
                   llm.STATUS_TOO_LONG, llm.STATUS_NOT_SENT,
                   Status.UNSCORED_NEEDS_MODEL, Status.UNSCORED_NOT_APPLICABLE, Status.UNSCORED_PARSE_ERROR,
                   Status.UNSCORED_NO_MAJORITY, Status.UNSCORED_NO_AGREEMENT):
        assert f"`{status}`" in text, f"status {status} is not described"


def test_format_page_documents_every_meta_key_of_the_bundled_data():
    documented = set()
    for row in _table_cells(FORMAT.read_text(encoding="utf-8"), "key"):
        documented.update(re.findall(r"`([a-z_]+)`", row[0]))
    used = {key for record in known_instances().values() for key in record["meta"]}
    assert used, "no meta keys found in the bundled data"
    assert used <= documented, f"docs/format.md does not describe meta keys {sorted(used - documented)}"


def test_format_page_has_a_loading_example_for_every_source_format():
    from toolqual_utils.loaders import FORMATS, load

    rows = _table_cells(FORMAT.read_text(encoding="utf-8"), "`--format`")
    documented = {row[0].strip("`"): row[-1] for row in rows}
    assert set(documented) == set(FORMATS) - {"auto"}, "docs/format.md: one row per `toolqual load --format`"
    for fmt, example in documented.items():
        command = re.fullmatch(r"`toolqual load (.+) --out \S+`", example)
        assert command, f"{fmt}: the example is not a `toolqual load SRC --out FILE` command: {example}"
        paths = [ROOT / p for p in command.group(1).split()]
        result = load(paths)
        assert result.instances, f"{fmt}: the example loads no instance"
        assert set(result.summary["format"]) - {"-"} == {fmt}, f"{fmt}: the example is read as {set(result.summary['format'])}"


@pytest.mark.parametrize("page", ["annotation_guide.md", "format.md", "method.md", "README.md"])
def test_docs_pages_exist_and_say_something(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    assert text.startswith("# ") and len(text) > 500
