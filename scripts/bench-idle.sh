#!/usr/bin/env bash
# bench-idle.sh: the CPU an idle three-node cluster burns (issue 16, item 7).
#
#   scripts/bench-idle.sh [options] [KMSD ...]   (default bin/kmsd; make build first)
#
# For each round and each kmsd binary given (alternating: A B, then B A, ...):
# starts three kmsd on free loopback ports in a scratch directory
# (--bootstrap-expect 3, default Raft timing, no fast gossip), waits until all
# three are healthy, initializes the cluster (kmsctl operator init), lets it
# settle (--settle; the default 65 s is past the minute after which an
# unused node pauses its freshness renewal), then reads each process's
# utime+stime from
# /proc/PID/stat over --duration and prints the CPU milliseconds per second of
# the leader and of the two followers:
#   idle 3-node cluster CPU ms/s: leader X, followers Y, Z
# With --profile DIR each node also serves pprof (--debug-addr) and a 30 s CPU
# profile and a goroutine dump of the leader and of one follower are saved in
# DIR (they add their own CPU to that window: measure without --profile).
# The nodes and their data are removed at the end. Linux only (/proc).
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF2'
usage: scripts/bench-idle.sh [options] [KMSD ...]

options:
  --duration S   seconds of measurement per cluster (default 30)
  --settle S     seconds between init and the measurement (default 65)
  --rounds N     clusters per binary, alternating between binaries (default 1)
  --kmsctl PATH  kmsctl for operator init (default bin/kmsctl)
  --profile DIR  also save pprof CPU profiles and goroutine dumps in DIR
  -h, --help     this text
EOF2
}
die() { echo "bench-idle: $*" >&2; exit 1; }

duration=30
settle=65
rounds=1
kmsctl=bin/kmsctl
profile=""
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="${2:?}"; shift 2 ;;
    --settle) settle="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --kmsctl) kmsctl="${2:?}"; shift 2 ;;
    --profile) profile="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) bins+=("$1"); shift ;;
  esac
done
[ ${#bins[@]} -gt 0 ] || bins=(bin/kmsd)
for n in "$duration" "$settle" "$rounds"; do
  case "$n" in '' | *[!0-9]*) die "--duration, --settle and --rounds take a number" ;; esac
done
for b in "${bins[@]}" "$kmsctl"; do [ -x "$b" ] || die "$b missing (make build)"; done
[ -r /proc/self/stat ] || die "needs Linux /proc"
command -v jq >/dev/null || die "jq is not installed"
command -v python3 >/dev/null || die "python3 is not installed (free ports)"
[ -z "$profile" ] || { mkdir -p "$profile"; command -v go >/dev/null || die "--profile needs go (go tool pprof)"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-idle.XXXXXX")"
tck="$(getconf CLK_TCK)"
pids=()
stop_nodes() {
  stop_pids "${pids[@]}"
  pids=()
}
cleanup() {
  stop_nodes
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ticks PID: utime+stime of a process in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run_cluster KMSD LABEL: one cluster, one measurement; prints the result line.
run_cluster() {
  local kmsd=$1 label=$2 dir n ok leader
  dir="$(mktemp -d "$work/c.XXXXXX")"
  local debug=0
  [ -z "$profile" ] || debug=1
  if ! CLUSTER_DEBUG=$debug start_cluster3 "$kmsd" "$kmsctl" "$dir"; then
    pids+=("${cl_pid[@]}")
    tail -5 "$dir"/n*.log >&2
    die "the cluster did not become healthy"
  fi
  pids+=("${cl_pid[@]}")
  sleep "$settle"
  leader="$(cluster_leader)"
  [ -n "$leader" ] || die "no leader found"
  local -a order=("$leader")
  for n in 1 2 3; do [ "$n" = "$leader" ] || order+=("$n"); done
  local -a t0 t1
  local s0 s1
  if [ -n "$profile" ]; then
    local f=${order[1]} stamp
    stamp="$(date -u +%H%M%S)"
    for role in leader follower; do
      n=$leader
      [ "$role" = leader ] || n=$f
      go tool pprof -proto -seconds "$duration" "http://127.0.0.1:${cl_debug[n]}/debug/pprof/profile" \
        >"$profile/${label:-kmsd}-$stamp-$role.pprof" 2>/dev/null &
    done
  fi
  s0="$(date +%s.%N)"
  for n in 1 2 3; do t0[n]=$(cpu_ticks "${pids[n - 1]}"); done
  sleep "$duration"
  for n in 1 2 3; do t1[n]=$(cpu_ticks "${pids[n - 1]}"); done
  s1="$(date +%s.%N)"
  if [ -n "$profile" ]; then
    wait_profiles=$(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}") || true)
    # shellcheck disable=SC2086
    [ -z "$wait_profiles" ] || wait $wait_profiles 2>/dev/null || true
    for role in leader follower; do
      n=$leader
      [ "$role" = leader ] || n=${order[1]}
      curl -fs "http://127.0.0.1:${cl_debug[n]}/debug/pprof/goroutine?debug=1" >"$profile/${label:-kmsd}-$stamp-$role.goroutines.txt" || true
    done
  fi
  local ms=()
  for n in "${order[@]}"; do
    ms+=("$(awk -v a="${t0[n]}" -v b="${t1[n]}" -v hz="$tck" -v s0="$s0" -v s1="$s1" \
      'BEGIN { printf "%.1f", (b - a) * 1000 / hz / (s1 - s0) }')")
  done
  local prefix=""
  [ -z "$label" ] || prefix="$label: "
  echo "${prefix}idle 3-node cluster CPU ms/s: leader ${ms[0]}, followers ${ms[1]}, ${ms[2]} (${duration} s, load average $(loadavg))"
  stop_nodes
  rm -rf "$dir"
}

echo "bench-idle: $(nproc) CPUs, load average $(loadavg); ${#bins[@]} binary(ies), $rounds round(s), ${settle} s settle, ${duration} s window" >&2
for r in $(seq 1 "$rounds"); do
  idx=()
  for i in "${!bins[@]}"; do idx+=("$i"); done
  if [ $((r % 2)) = 0 ]; then
    rev=()
    for ((i = ${#idx[@]} - 1; i >= 0; i--)); do rev+=("${idx[i]}"); done
    idx=("${rev[@]}")
  fi
  for i in "${idx[@]}"; do
    label="${bins[i]}"
    [ ${#bins[@]} -gt 1 ] || label=""
    [ -z "$profile" ] || label="$(basename "$(dirname "${bins[i]}")")-$(basename "${bins[i]}")"
    run_cluster "${bins[i]}" "$label"
  done
done
