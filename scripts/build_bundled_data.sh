#!/usr/bin/env bash
# Regenerate the bundled canonical data under data/ from the upstream files in data/sources/, with `toolqual load`.
#
#   PY=/path/to/python bash scripts/build_bundled_data.sh [OUT_DIR] [SOURCES_DIR]
#
# PY is the interpreter that has toolqual installed (`make data` passes the project's .venv one); the
# script never guesses another. OUT_DIR defaults to data/ and SOURCES_DIR to data/sources/ (both relative
# to the repository root; data/sources/README.md says where each file comes from).
# The output is deterministic (sorted directory walks, fixed selections), so tests/test_bundled_data.py can
# regenerate it into a temporary folder and compare byte for byte. Selections (see data/README.md):
#   - ToolAlpaca, ToolBench/StableToolBench answers, ToolBench data_example queries, Seal-Tools dev: everything.
#   - StableToolBench solvable queries: the first 40 queries of each test_instruction/*.json file.
#   - BFCL: the first 40 questions of each category file, plus the BFCL instances of the reference annotations.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/data}"
SOURCES="${2:-$ROOT/data/sources}"
if [[ -z "${PY:-}" ]]; then
  echo "build_bundled_data: set PY to the Python interpreter that has toolqual installed (make data does this)" >&2
  exit 2
fi
TOOLQUAL=("$PY" -m toolqual_utils.cli load --quiet)

if [[ ! -d "$SOURCES/toolalpaca" ]]; then
  echo "build_bundled_data: no source data at $SOURCES (expected toolalpaca/, toolbench/, stabletoolbench/, bfcl/, seal_tools/)" >&2
  exit 2
fi
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"

# Keep the first N records per subset (the second component of the id), plus ids given explicitly.
select_first() {  # select_first IN OUT N [ID...]
  "$PY" - "$@" <<'PYEOF'
import json, sys
src, dst, limit, keep = sys.argv[1], sys.argv[2], int(sys.argv[3]), set(sys.argv[4:])
taken = {}
with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
    for line in fin:
        record_id = json.loads(line)["id"]
        subset = record_id.split("/")[1]
        taken[subset] = taken.get(subset, 0) + 1
        if taken[subset] <= limit or record_id in keep:
            fout.write(line)
PYEOF
}

# ToolAlpaca evaluation sets (eval_real.json carries the credential redaction noted in data/sources/README.md).
"${TOOLQUAL[@]}" "$SOURCES/toolalpaca/eval_simulated.json" "$SOURCES/toolalpaca/eval_real.json" \
  --out "$OUT/toolalpaca_eval.jsonl"

# ToolAlpaca train-format model runs (Octobrist fork). Runs that crashed are rejected (see the rejects file).
"${TOOLQUAL[@]}" "$SOURCES/toolalpaca/fork_octobrist/toolalpaca-7b-sim.json" \
  "$SOURCES/toolalpaca/fork_octobrist/gpt-3.5-sim-old.json" --out "$OUT/toolalpaca_train_format.jsonl"

# ToolBench answer trees (OpenBMB data_example) + StableToolBench answer trees.
"${TOOLQUAL[@]}" "$SOURCES/toolbench/data_example/answer" "$SOURCES/stabletoolbench/data_example/answer" \
  --out "$OUT/toolbench_answers.jsonl"

# ToolBench data_example queries (all) + the first 40 StableToolBench solvable queries per file.
"${TOOLQUAL[@]}" "$SOURCES/stabletoolbench/solvable_queries/test_instruction" --out "$WORK/stb_queries.jsonl"
select_first "$WORK/stb_queries.jsonl" "$WORK/stb_queries_first40.jsonl" 40
"${TOOLQUAL[@]}" "$SOURCES/toolbench/data_example/instruction" "$WORK/stb_queries_first40.jsonl" \
  --out "$OUT/toolbench_queries.jsonl"

# Seal-Tools dev set joined with its tool pool.
"${TOOLQUAL[@]}" "$SOURCES/seal_tools/dev.jsonl" --out "$OUT/seal_tools_dev.jsonl"

# BFCL: first 40 per category (irrelevance included) + the reference-annotation instances.
"${TOOLQUAL[@]}" "$SOURCES/bfcl" --out "$WORK/bfcl_all.jsonl"
select_first "$WORK/bfcl_all.jsonl" "$OUT/bfcl.jsonl" 40 \
  bfcl/live_multiple/live_multiple_372-134-17 bfcl/live_multiple/live_multiple_860-181-1 \
  bfcl/live_multiple/live_multiple_892-185-2 bfcl/multiple/multiple_75 bfcl/parallel_multiple/parallel_multiple_164

for f in toolalpaca_eval toolalpaca_train_format toolbench_answers toolbench_queries seal_tools_dev bfcl; do
  printf '%-28s %6d instances\n' "$f.jsonl" "$(wc -l < "$OUT/$f.jsonl")"
done
