#!/usr/bin/env bash
# Turn the bundled real-model answers (data/judge_runs/*/results.jsonl) into verdict and ICE tables,
# with the same parsing and decision code as a live run (`toolqual judge|ice --import-batch`), and write the
# v2 judge requests for the same instances (data/judge_runs/v2-requests/): the Batch files a model must
# answer before v2 can be measured. They double as golden files of the v2 request layout.
#
#   PY=/path/to/python bash scripts/import_judge_runs.sh [OUT_DIR]
#
# OUT_DIR defaults to data/judge_runs/ (each run's tables go beside its answers). `make data` runs it;
# tests/test_judge_runs.py regenerates the tables into a temporary folder and compares them byte for byte,
# so a change to the rules or the decision code that changes a bundled verdict shows up as a failing test
# (rerun `make data` and review the diff).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/data/judge_runs}"
RUNS="$ROOT/data/judge_runs"
if [[ -z "${PY:-}" ]]; then
  echo "import_judge_runs: set PY to the Python interpreter that has toolqual installed (make data does this)" >&2
  exit 2
fi
cd "$ROOT"
for run in strong-v1-dev strong-v1-sample; do
  mkdir -p "$OUT/$run"
  "$PY" -m toolqual_utils.cli judge "$RUNS/$run/instances.jsonl" --model strong-judge --prompt-version v1 \
    --cache none --import-batch "$RUNS/$run/results.jsonl" --out "$OUT/$run/verdicts.csv" --quiet >/dev/null
  printf '%-18s %s\n' "$run" "$(wc -l < "$OUT/$run/verdicts.csv") lines of verdicts"
done
mkdir -p "$OUT/v2-requests"
for run in dev:strong-v1-dev sample:strong-v1-sample; do
  name="${run%%:*}"; source="${run#*:}"
  rm -f "$OUT/v2-requests/$name.requests.jsonl"
  "$PY" -m toolqual_utils.cli judge "$RUNS/$source/instances.jsonl" --model strong-judge --prompt-version v2 \
    --cache none --export-batch "$OUT/v2-requests/$name.requests.jsonl" --quiet >/dev/null
  printf '%-18s %s\n' "v2-requests/$name" "$(wc -l < "$OUT/v2-requests/$name.requests.jsonl") requests"
done
mkdir -p "$OUT/ice-v1-probe"
"$PY" -m toolqual_utils.cli ice "$RUNS/ice-v1-probe/instances.jsonl" --model target-model --cache none \
  --import-batch "$RUNS/ice-v1-probe/results.jsonl" --out "$OUT/ice-v1-probe/ice.csv" >/dev/null
printf '%-18s %s\n' "ice-v1-probe" "$(wc -l < "$OUT/ice-v1-probe/ice.csv") lines of ICE scores"
