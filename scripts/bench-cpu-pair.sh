#!/usr/bin/env bash
# bench-cpu-pair.sh: a dev node of BASE and of HEAD under the same kms-load,
# alternating, printing each run's ok/s, the server's CPU per request (from
# /proc/PID/stat) and p99. Extra arguments go to kmsd; @DIR@ in them becomes
# the node's scratch directory (e.g. --audit-log @DIR@/audit.log).
#
#   scripts/bench-cpu-pair.sh BASE ROUNDS [KMSD FLAGS...]     (DUR=6s C=16 ACTION=Encrypt)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
base=$1 rounds=$2
shift 2
flags=("$@")
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# shellcheck source=bench-lib.sh
. scripts/bench-lib.sh
w="$(mktemp -d "${TMPDIR:-/tmp}/bench-cpu-pair.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$w"
}
trap cleanup EXIT
build_pair "$w" "$base"
tck=$(getconf CLK_TCK)
for r in $(seq 1 "$rounds"); do
  order="base head"
  [ $((r % 2)) -eq 0 ] && order="head base"
  for l in $order; do
    d="$(mktemp -d "$w/n.XXXX")"
    fl=()
    for f in "${flags[@]}"; do fl+=("${f//@DIR@/$d}"); done
    "$w/$l.kmsd" --dev --data-dir "$d/data" --http-addr 127.0.0.1:0 --cluster-addr 127.0.0.1:0 \
      --gossip-addr 127.0.0.1:0 "${fl[@]}" >"$d/out" 2>"$d/err" &
    pid=$!
    for _ in $(seq 100); do jq -e .Endpoint "$d/data/credentials.json" >/dev/null 2>&1 && break; sleep 0.1; done
    "$w/kms-load" --credentials "$d/data/credentials.json" --action "${ACTION:-Encrypt}" --duration 1s >/dev/null 2>&1
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    "$w/kms-load" --credentials "$d/data/credentials.json" --action "${ACTION:-Encrypt}" --duration "${DUR:-6s}" \
      --concurrency "${C:-16}" --json 2>/dev/null >"$d/res.json"
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    ok=$(jq .ok "$d/res.json")
    echo "round $r $l ok/s $(jq .ok_per_second "$d/res.json" | xargs printf %.0f)" \
      "cpu_us $(awk -v d=$((t1 - t0)) -v t="$tck" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0 ? d / t * 1e6 / n : 0) }')" \
      "p99_ms $(jq .p99_ms "$d/res.json")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
  done
done
