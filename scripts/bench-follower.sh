#!/usr/bin/env bash
# bench-follower.sh: Raft writes through a follower of a 3-node cluster, one
# client at a time (issue 16, target 5): what a write costs when the node the
# client talks to must learn the commit from the leader.
#
#   scripts/bench-follower.sh [BIN_DIR]   (default bin/; make build first)
#
# Starts three kmsd on free loopback ports in a scratch directory, finds a
# follower, then runs kms-load --concurrency 1 (UpdateKeyDescription 8 s,
# and the same through the leader; then CreateKey 2 s through the follower
# (an instance holds 1,000 keys), and prints kms-load's
# lines; then durable CreateKey with 8 and 64 clients through the follower
# and the leader (each with the leader's entries per fsync during the run and
# the server CPU per key), and the entries per fsync of each node's Raft
# log. WRITES_ONLY=1 and JSON_DIR=DIR: see below. The nodes and their data
# are removed at the end.
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bin="${1:-bin}"
for b in kmsd kmsctl kms-load; do [ -x "$bin/$b" ] || { echo "bench-follower: $bin/$b missing (make build)" >&2; exit 1; }; done
command -v jq >/dev/null || { echo "bench-follower: jq is not installed" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-follower.XXXXXX")"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! start_cluster3 "$bin/kmsd" "$bin/kmsctl" "$work"; then
  pids=("${cl_pid[@]}")
  tail -5 "$work"/n*.log >&2
  echo "bench-follower: the cluster did not become healthy" >&2
  exit 1
fi
pids=("${cl_pid[@]}")
http=("" "${cl_http[1]}" "${cl_http[2]}" "${cl_http[3]}")
leader="$(cluster_leader)" follower=""
[ -n "$leader" ] || { echo "bench-follower: no leader found" >&2; exit 1; }
for n in 1 2 3; do [ "$n" != "$leader" ] && { follower=$n; break; }; done
echo "leader n$leader, follower n$follower ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
# WRITES_ONLY=1 skips the one-client runs; JSON_DIR=DIR keeps each write
# run's kms-load JSON as DIR/Cluster<c>.<follower|leader>.json, with the
# CPU per key of the three nodes added as cluster_cpu_us (make bench).
actions="UpdateKeyDescription CreateKey"
[ "${WRITES_ONLY:-0}" = 1 ] && actions=""
for action in $actions; do
  d=8s targets="follower leader"
  [ "$action" = CreateKey ] && d=2s targets=follower
  for target in $targets; do
    n=$follower
    [ "$target" = leader ] && n=$leader
    echo "== $action through the $target (n$n), 1 client, $d"
    "$bin/kms-load" --credentials "$work/creds.json" --endpoints "http://127.0.0.1:${http[n]}" --action "$action" \
      --concurrency 1 --duration "$d" 2>/dev/null
  done
done

# Durable CreateKey at the issue's concurrencies (WRITE_CONCURRENCY, default
# "8 64"), WRITE_DURATION each (default 4s), through the follower and the
# leader, into an instance with room for them all; then the log appends'
# entries per fsync on each node (kms_raft_entries_per_append).
inst="$("$bin/kmsctl" --credentials "$work/creds.json" operator instance create --type software --name bench-writes --key-quota 2000000 | grep -o 'kst-[a-z0-9]*' | head -1)"
[ -n "$inst" ] || { echo "bench-follower: could not create the instance for the writes" >&2; exit 1; }
jq --arg i "$inst" '.InstanceId = $i' "$work/creds.json" >"$work/writes.json"
# cpu_ticks PID: utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# appends N: "entries appends" so far in node N's Raft log.
appends() {
  curl -fs "http://127.0.0.1:${http[$1]}/metrics" | awk '
    /^kms_raft_entries_per_append_sum/ { s = $2 } /^kms_raft_entries_per_append_count/ { c = $2 }
    END { printf "%d %d\n", s, c }'
}
for c in ${WRITE_CONCURRENCY:-8 64}; do
  for target in follower leader; do
    n=$follower
    [ "$target" = leader ] && n=$leader
    echo "== CreateKey through the $target (n$n), $c clients, ${WRITE_DURATION:-4s}"
    read -r s0 c0 < <(appends "$leader")
    t0=(); for m in 1 2 3; do t0[m]=$(cpu_ticks "${pids[m-1]}"); done
    "$bin/kms-load" --credentials "$work/writes.json" --endpoints "http://127.0.0.1:${http[n]}" --action CreateKey \
      --concurrency "$c" --duration "${WRITE_DURATION:-4s}" --json 2>/dev/null >"$work/run.json"
    t1=(); for m in 1 2 3; do t1[m]=$(cpu_ticks "${pids[m-1]}"); done
    read -r s1 c1 < <(appends "$leader")
    jq -r '"  ok \(.ok) (\(.ok_per_second | floor)/s)  latency p50 \(.p50_ms)ms  p99 \(.p99_ms)ms  errors \([.errors // {} | .[]] | add // 0)"' "$work/run.json"
    ok=$(jq -r .ok "$work/run.json")
    awk -v e=$((s1 - s0)) -v a=$((c1 - c0)) -v ok="$ok" -v hz="$(getconf CLK_TCK)" \
      -v l=$((t1[leader] - t0[leader])) -v f1=$((t1[1] + t1[2] + t1[3] - t0[1] - t0[2] - t0[3])) 'BEGIN {
        if (a > 0) printf "  the leader'"'"'s log during this run: %d entries in %d appends, %.1f per fsync\n", e, a, e / a
        if (ok > 0) printf "  server CPU per key: the leader %.0f µs, the three nodes %.0f µs\n", l * 1e6 / hz / ok, f1 * 1e6 / hz / ok }'
    if [ -n "${JSON_DIR:-}" ]; then
      jq --argjson cpu "$(awk -v f="$((t1[1] + t1[2] + t1[3] - t0[1] - t0[2] - t0[3]))" -v ok="$ok" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f", (ok > 0 ? f * 1e6 / hz / ok : 0) }')" '. + {cluster_cpu_us: $cpu}' "$work/run.json" >"$JSON_DIR/Cluster$c.$target.json"
    fi
  done
done
for n in 1 2 3; do
  curl -fs "http://127.0.0.1:${http[n]}/metrics" | awk -v n="n$n" '
    /^kms_raft_entries_per_append_sum/ { s = $2 } /^kms_raft_entries_per_append_count/ { c = $2 }
    END { if (c > 0) printf "%s: %d log entries in %d appends (fsyncs), %.1f per fsync\n", n, s, c, s / c }'
done
