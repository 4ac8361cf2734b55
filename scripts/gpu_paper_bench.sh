#!/usr/bin/env bash
# MOTE at the authors' budget (`paper`: 50 epochs, batch 1024, 5,000 images, width 32, 32 px,
# 11 landscape epochs, wall clock) on a GPU: Kendall τ / Spearman ρ on 100 NB201 cells, plus
# fidelity against the released terms, written into $OUT.
#
#   OUT=/some/dir scripts/gpu_paper_bench.sh [TRUTH.csv] [DATA.npz] [RELEASED.csv]
#
# Defaults: ../shared/data/{nb201_ground_truth.csv, cifar100_rd10_train.npz,
# nb201_mote_released.csv}; env N (100), BUDGET (paper), DEVICE (cuda), LIMIT_S (510),
# PYTHON (python3). Every scored cell is appended to $OUT/cells.jsonl at once, so a run cut by
# its time slot keeps its cells: scoring stops after LIMIT_S seconds (sized for a 10-minute slot)
# and the cells scored so far (a prefix of the seeded sample) are summarised into
# $OUT/correlation.json. Running the script again on the same $OUT resumes from the cache.
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
TRUTH=${1:-${TRUTH:-../shared/data/nb201_ground_truth.csv}}
DATA=${2:-${DATA:-../shared/data/cifar100_rd10_train.npz}}
RELEASED=${3:-${RELEASED:-../shared/data/nb201_mote_released.csv}}
N=${N:-100}
BUDGET=${BUDGET:-paper}
DEVICE=${DEVICE:-cuda}
LIMIT_S=${LIMIT_S:-510}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
LOG="$OUT/log.txt"
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null; } >>"$LOG"

bench_args() {  # the command line for the first $1 cells of the sample
  ARGS=(-m mote_optuna bench correlation --truth "$TRUTH" --data "$DATA" --n "$1" --seed 0
    --budget "$BUDGET" --device "$DEVICE" --out "$OUT")
  if [ -f "$RELEASED" ]; then ARGS+=(--released "$RELEASED"); fi
}

bench_args "$N"
timeout --signal=INT --kill-after=30 "$LIMIT_S" "$PY" "${ARGS[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && [ -f "$OUT/cells.jsonl" ]; then
  scored=$(($(wc -l <"$OUT/cells.jsonl") - 1))  # complete lines after the header
  echo "stopped (exit $rc) after $scored of $N cells; summarising those" | tee -a "$LOG"
  if [ "$scored" -ge 3 ]; then
    bench_args "$scored"
    "$PY" "${ARGS[@]}" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
  fi
fi
exit "$rc"
