#!/usr/bin/env bash
# bench-write-trace.sh: where one durable write's time goes, step by step
# across the three nodes of a cluster (issue 16, target 5).
#
#   scripts/bench-write-trace.sh [leader|follower] [BIN_DIR]   (defaults: leader, bin/)
#
# Starts three kmsd on free loopback ports with --debug-addr, then one
# kms-load client writing UpdateKeyDescription through the leader (or a
# follower) for 6 s; after 2 s it takes a 2 s Go execution trace of every
# node at once (/debug/pprof/trace), converts each with `go tool trace
# -d=parsed` and prints scripts/write-timeline.py's table: the median time
# of each step of a write after its request woke the serving node's HTTP
# goroutine. The trace clock is the machine's monotonic clock, so the three
# traces share one timeline. Tracing slows the writes by a few percent
# (kms-load's line shows the rate and latency while traced). Needs go and
# python3; the nodes, their data and the traces are removed at the end
# (KEEP=DIR keeps the traces in DIR).
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
target="${1:-leader}"
bin="${2:-bin}"
case "$target" in leader | follower) ;; *) sed -n '2,17p' "$0" >&2; exit 2 ;; esac
for b in kmsd kmsctl kms-load; do [ -x "$bin/$b" ] || { echo "bench-write-trace: $bin/$b missing (make build)" >&2; exit 1; }; done
for c in go python3 jq curl; do command -v "$c" >/dev/null || { echo "bench-write-trace: $c is not installed" >&2; exit 1; }; done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-write-trace.XXXXXX")"
cl_pid=()
cleanup() {
  stop_pids "${cl_pid[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! CLUSTER_DEBUG=1 start_cluster3 "$bin/kmsd" "$bin/kmsctl" "$work"; then
  tail -5 "$work"/n*.log >&2
  echo "bench-write-trace: the cluster did not become healthy" >&2
  exit 1
fi
leader="$(cluster_leader)"
[ -n "$leader" ] || { echo "bench-write-trace: no leader found" >&2; exit 1; }
serve=$leader followers=()
for n in 1 2 3; do [ "$n" != "$leader" ] && followers+=("n$n"); done
[ "$target" = follower ] && serve="${followers[0]#n}"
echo "leader n$leader; one client writing through n$serve ($(nproc) CPUs, load average $(loadavg))"
"$bin/kms-load" --credentials "$work/creds.json" --endpoints "http://127.0.0.1:${cl_http[serve]}" \
  --action UpdateKeyDescription --concurrency 1 --duration 6s 2>/dev/null &
load_pid=$!
sleep 2
tp=()
for n in 1 2 3; do
  curl -fsS -o "$work/n$n.trace" "http://127.0.0.1:${cl_debug[n]}/debug/pprof/trace?seconds=2" &
  tp+=($!)
done
wait "${tp[@]}"
wait "$load_pid"
for n in 1 2 3; do go tool trace -d=parsed "$work/n$n.trace" >"$work/n$n.txt" 2>/dev/null; done
if [ "$target" = leader ]; then
  python3 "$here/write-timeline.py" leader "$work" "n$leader" "$(IFS=,; echo "${followers[*]}")"
else
  python3 "$here/write-timeline.py" follower "$work" "n$serve"
fi
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  cp "$work"/n*.trace "$KEEP"/
  echo "traces kept in $KEEP (go tool trace $KEEP/n$serve.trace)"
fi
