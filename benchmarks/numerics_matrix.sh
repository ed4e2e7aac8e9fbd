#!/usr/bin/env bash
# The suite under several float settings (thread counts and the CPU kernels torch and oneDNN may use),
# and the margin every learning claim keeps over seeds x settings.
#
#   bash benchmarks/numerics_matrix.sh [--suite] [--seeds 0-9] [--out DIR]
#
# --suite also runs the whole suite once per setting and lists each result. Without it only the
# `numerics` tests run, at every seed given. Run it alone on the machine: a job beside it changes
# nothing in the figures but makes it slow. Needs the project installed (pip install -e ".[test]").
set -uo pipefail
cd "$(dirname "$0")/.."
suite=0
seeds=0-9
out=runs/numerics
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite=1 ;;
    --seeds) seeds=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "numerics_matrix.sh: unknown argument $1 (expected --suite, --seeds LIST, --out DIR)"; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
log="$out/numerics.jsonl"
: >"$log"
native=$(python -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())") || exit 1

# threads, ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA ("-" for the machine's own)
settings=("1 - -" "2 - -" "1 default -" "2 default SSE41")
case "$native" in
  avx512) settings+=("1 avx2 -") ;;
esac

summary="$out/suite.txt"
: >"$summary"
for entry in "${settings[@]}"; do
  read -r threads capability isa <<<"$entry"
  env_=(OMP_NUM_THREADS="$threads" T2IGAN_CACHE="$out/cache-$threads-$capability-$isa")  # nothing shared
  [ "$capability" != "-" ] && env_+=(ATEN_CPU_CAPABILITY="$capability")
  [ "$isa" != "-" ] && env_+=(ONEDNN_MAX_CPU_ISA="$isa")
  name="threads=$threads capability=${capability/-/$native} onednn=${isa/-/native}"
  echo "== $name" >&2
  if [ "$suite" = 1 ]; then
    result=$(env "${env_[@]}" python -m pytest -q -p no:cacheprovider 2>&1 | tail -n 1)
    echo "$name: $result" | tee -a "$summary"
  fi
  env "${env_[@]}" T2IGAN_NUMERICS_SEEDS="$seeds" T2IGAN_NUMERICS_LOG="$log" \
    python -m pytest -q -p no:cacheprovider -m numerics 2>&1 | tail -n 1 | sed "s/^/  numerics at seeds $seeds: /" >&2
done
[ "$suite" = 1 ] && { echo; echo "whole suite per setting:"; cat "$summary"; echo; }
python benchmarks/numerics_spread.py "$log"
