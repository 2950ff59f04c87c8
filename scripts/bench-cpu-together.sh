#!/usr/bin/env bash
# bench-cpu-together.sh: a dev node of BASE and one of HEAD served AT THE SAME
# TIME, each by its own kms-load, round after round; prints each node's ok/s,
# CPU per request (from /proc/PID/stat) and p99, and with --audit-log the
# mean kms_audit_lines_per_sync. On a machine shared with other work, two
# sequential runs see different minutes; two concurrent ones see the same,
# so their difference is steadier than bench-cpu-pair.sh's (the absolute
# figures are higher: the two nodes and loads share the CPUs). Extra
# arguments go to both kmsd; @DIR@ becomes each node's scratch directory.
#
#   scripts/bench-cpu-together.sh BASE ROUNDS [KMSD FLAGS...]   (DUR=6s C=16 ACTION=Encrypt)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
base=$1 rounds=$2
shift 2
flags=("$@")
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# shellcheck source=bench-lib.sh
. scripts/bench-lib.sh
w="$(mktemp -d "${TMPDIR:-/tmp}/bench-cpu-together.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$w"
}
trap cleanup EXIT
build_pair "$w" "$base"
tck=$(getconf CLK_TCK)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  declare -A pid dir t0 lp
  for l in base head; do
    d="$(mktemp -d "$w/n.XXXX")"
    dir[$l]=$d
    fl=()
    for f in "${flags[@]}"; do fl+=("${f//@DIR@/$d}"); done
    "$w/$l.kmsd" --dev --data-dir "$d/data" --http-addr 127.0.0.1:0 --cluster-addr 127.0.0.1:0 \
      --gossip-addr 127.0.0.1:0 "${fl[@]}" >"$d/out" 2>"$d/err" &
    pid[$l]=$!
    pids+=("$!")
  done
  for l in base head; do
    for _ in $(seq 100); do jq -e .Endpoint "${dir[$l]}/data/credentials.json" >/dev/null 2>&1 && break; sleep 0.1; done
    "$w/kms-load" --credentials "${dir[$l]}/data/credentials.json" --action "${ACTION:-Encrypt}" --duration 1s >/dev/null 2>&1
  done
  for l in base head; do t0[$l]=$(awk '{print $14+$15}' "/proc/${pid[$l]}/stat"); done
  for l in base head; do
    "$w/kms-load" --credentials "${dir[$l]}/data/credentials.json" --action "${ACTION:-Encrypt}" --duration "${DUR:-6s}" \
      --concurrency "${C:-16}" --json 2>/dev/null >"${dir[$l]}/res.json" &
    lp[$l]=$!
  done
  for l in base head; do wait "${lp[$l]}"; done
  for l in base head; do
    t1=$(awk '{print $14+$15}' "/proc/${pid[$l]}/stat")
    ok=$(jq .ok "${dir[$l]}/res.json")
    ep=$(jq -r .Endpoint "${dir[$l]}/data/credentials.json")
    lps=$(curl -s "${ep%/}/metrics" | awk '/^kms_audit_lines_per_sync_(sum|count)/ { v[$1] = $2 }
      END { if (v["kms_audit_lines_per_sync_count"] > 0) printf " lines/sync %.1f", v["kms_audit_lines_per_sync_sum"] / v["kms_audit_lines_per_sync_count"] }')
    echo "round $r $l ok/s $(jq .ok_per_second "${dir[$l]}/res.json" | xargs printf %.0f)" \
      "cpu_us $(awk -v d=$((t1 - ${t0[$l]})) -v t="$tck" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0 ? d / t * 1e6 / n : 0) }')" \
      "p99_ms $(jq .p99_ms "${dir[$l]}/res.json")$lps"
  done
  for l in base head; do kill "${pid[$l]}"; wait "${pid[$l]}" 2>/dev/null || true; done
  pids=()
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
