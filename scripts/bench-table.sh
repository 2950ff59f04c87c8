#!/usr/bin/env bash
# bench-table.sh: issue 16's two tables, redone for two builds of raftkms
# (BASE and HEAD) next to the floor (bench/baseline), in one window.
#
#   scripts/bench-table.sh [options] BASE
#
# BASE is a git revision (e.g. 4d20267, main before issue 16's work). For
# each round, in alternating order, the floor and the kmsd of BASE and of
# HEAD (built from `git archive`) are measured with HEAD's kms-load:
#   - Encrypt, 64-byte plaintexts, keep-alive: closed loop with
#     --concurrency clients (req/s, the server's CPU per request from
#     /proc/PID/stat) and open loop at --rate requests/s (p99, p99.9, timed
#     from each request's intended send), against a dev node, a dev node
#     with --audit-log, and one follower of a 3-node cluster (CPU: that
#     follower's; the cluster's three nodes in their own column);
#   - durable writes (UpdateKeyDescription: one Raft entry, fsynced on a
#     quorum; CreateKey needs more keys than BASE's instances hold) at each
#     of --write-concurrency, against the dev node and through the
#     follower; the floor appends a journal line and fdatasyncs it (group
#     commit).
# It prints the medians as Markdown tables. Raw JSON stays in
# .tmp/bench-table/<date>-<time>/. Takes ~3 minutes a round.
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF2'
usage: scripts/bench-table.sh [options] BASE

options:
  --rounds N                 interleaved rounds (default 3)
  --duration D               closed-loop and write windows (default 4s)
  --concurrency N            closed-loop clients (default 16)
  --rate N                   open-loop requests per second (default 2000)
  --rate-duration D          open-loop window (default 8s)
  --write-concurrency LIST   write clients, space-separated (default "8 64")
  --out DIR                  raw results (default .tmp/bench-table/<date>-<time>)
  -h, --help                 this text
EOF2
}

die() { echo "bench-table: $*" >&2; exit 1; }

rounds=3 duration=4s concurrency=16 rate=2000 rate_duration=8s write_concurrency="8 64" out="" base=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift 2 ;;
    --duration) duration="${2:?}"; shift 2 ;;
    --concurrency) concurrency="${2:?}"; shift 2 ;;
    --rate) rate="${2:?}"; shift 2 ;;
    --rate-duration) rate_duration="${2:?}"; shift 2 ;;
    --write-concurrency) write_concurrency="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [ -z "$base" ] || die "one BASE revision"; base="$1"; shift ;;
  esac
done
[ -n "$base" ] || { usage >&2; die "name the BASE revision"; }
for n in "$rounds" "$concurrency" "$rate"; do
  case "$n" in '' | *[!0-9]* | 0) die "--rounds, --concurrency and --rate take a positive number" ;; esac
done
[ -r /proc/self/stat ] || die "needs Linux /proc"
command -v jq >/dev/null || die "jq is not installed (make deps installs it)"
command -v python3 >/dev/null || die "python3 is not installed"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
git rev-parse --verify -q "$base^{commit}" >/dev/null || die "$base is not a revision of this repository"
[ -n "$out" ] || out=".tmp/bench-table/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out/load"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-table.XXXXXX")"
kms_load="$work/kms-load"
pids=()

stop_all() {
  stop_pids "${pids[@]}"
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-table: building $base, HEAD and the floor" >&2
build_pair "$work" "$base"
(cd "$work/head" && go build -o "$work/kmsctl" ./cmd/kmsctl && go build -o "$work/baseline" ./bench/baseline)
load_start="$(loadavg)"

# dev BUILD [KMSD FLAGS]: a fresh dev node; sets dev_pid and dev_creds.
dev() {
  local build=$1 dir
  shift
  dir="$(mktemp -d "$work/dev.XXXXXX")"
  if ! start_dev_node "$work/$build.kmsd" "$dir" "$@"; then
    pids+=("$node_pid")
    cp "$dir/stderr" "$out/failed-node.log" 2>/dev/null || true
    die "the $build dev node did not become ready (log: $out/failed-node.log)"
  fi
  pids+=("$node_pid")
  dev_pid=$node_pid dev_creds=$node_creds
}

# cluster BUILD: three nodes on free loopback ports; sets fol_pid,
# fol_creds (pointing at a follower) and cluster_pids.
cluster() {
  local build=$1 dir leader n
  dir="$(mktemp -d "$work/cluster.XXXXXX")"
  if ! start_cluster3 "$work/$build.kmsd" "$work/kmsctl" "$dir"; then
    pids+=("${cl_pid[@]}")
    die "the $build cluster did not become healthy ($dir)"
  fi
  pids+=("${cl_pid[@]}")
  leader="$(cluster_leader)"
  [ -n "$leader" ] || die "no leader in the $build cluster"
  for n in 1 2 3; do [ "$n" != "$leader" ] && break; done
  jq --arg e "http://127.0.0.1:${cl_http[n]}" '.Endpoint = $e' "$cl_creds" >"$dir/follower.json"
  fol_pid=${cl_pid[n]} fol_creds="$dir/follower.json" cluster_pids="${cl_pid[1]} ${cl_pid[2]} ${cl_pid[3]}"
}

# floor: the baseline server with its journal; sets floor_pid, floor_creds.
floor() {
  local dir
  dir="$(mktemp -d "$work/floor.XXXXXX")"
  start_floor "$work/baseline" "$dir" || { pids+=("$floor_pid"); die "the floor did not start"; }
  pids+=("$floor_pid")
}

measure() { # measure floor|base|head
  local what=$1
  echo "round $round/$rounds: $what $(loadavg)" >&2
  if [ "$what" = floor ]; then
    floor
    cluster_pids="" encrypt_runs floor "$floor_pid" --credentials "$floor_creds" --key key-baseline
    cluster_pids="" write_runs floor "$floor_pid" --credentials "$floor_creds" --key key-baseline --action CreateKey
    stop_all
    return
  fi
  dev "$what"
  cluster_pids="" encrypt_runs "dev.$what" "$dev_pid" --credentials "$dev_creds"
  cluster_pids="" write_runs "dev.$what" "$dev_pid" --credentials "$dev_creds" --action UpdateKeyDescription
  stop_all
  local adir
  adir="$(mktemp -d "$work/audit.XXXXXX")"
  dev "$what" --audit-log "$adir/audit.log"
  cluster_pids="" encrypt_runs "audit.$what" "$dev_pid" --credentials "$dev_creds"
  stop_all
  cluster "$what"
  encrypt_runs "follower.$what" "$fol_pid" --credentials "$fol_creds"
  write_runs "follower.$what" "$fol_pid" --credentials "$fol_creds" --action UpdateKeyDescription
  cluster_pids=""
  stop_all
}

for round in $(seq 1 "$rounds"); do
  case $((round % 3)) in
    1) order="floor base head" ;;
    2) order="head floor base" ;;
    0) order="base head floor" ;;
  esac
  for what in $order; do measure "$what"; done
done
load_end="$(loadavg)"

med() { json_median "$2" "$out"/load/$1.json; }
f() { fmt_num "$1"; }
line() { # line LABEL PREFIX: one row of the Encrypt table
  local cl="$2"
  printf '| %s | %s | %s | %s ms | %s ms |\n' "$1" "$(f "$(med "closed.$cl.*" ok_per_second)")" \
    "$(f "$(med "closed.$cl.*" cpu_us)")" "$(f "$(med "open.$cl.*" p99_ms)")" "$(f "$(med "open.$cl.*" p999_ms)")"
}
echo
echo "bench-table: $base (BASE) and $(git describe --always --dirty) (HEAD) next to bench/baseline, medians of $rounds rounds"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
echo
echo "Encrypt of 64 bytes, keep-alive (closed loop c=$concurrency; open loop at $rate/s)"
echo
echo "| system | req/s c=$concurrency | server CPU µs/req | p99 @ $rate/s | p99.9 @ $rate/s |"
echo "|---|---|---|---|---|"
line "bare Go net/http + JSON + AES-GCM (bench/baseline)" floor
for b in base head; do
  rev=$base; [ "$b" = head ] && rev=HEAD
  line "raftkms dev node ($rev)" "dev.$b"
  line "raftkms + \`--audit-log\` ($rev)" "audit.$b"
  printf '| raftkms 3 nodes, one follower (%s) | %s | %s (the three nodes: %s) | %s ms | %s ms |\n' "$rev" \
    "$(f "$(med "closed.follower.$b.*" ok_per_second)")" "$(f "$(med "closed.follower.$b.*" cpu_us)")" \
    "$(f "$(med "closed.follower.$b.*" cluster_cpu_us)")" "$(f "$(med "open.follower.$b.*" p99_ms)")" "$(f "$(med "open.follower.$b.*" p999_ms)")"
done
echo
echo "Durable writes (raftkms: UpdateKeyDescription, one Raft entry; the floor: a journal line fdatasync'd, group commit): ok/s, p99"
echo
printf '| system |'; for wc in $write_concurrency; do printf ' c=%s |' "$wc"; done; echo
printf '|---|'; for wc in $write_concurrency; do printf -- '---|'; done; echo
wrow() {
  printf '| %s |' "$1"
  for wc in $write_concurrency; do
    printf ' %s/s, %s ms |' "$(f "$(med "write$wc.$2.*" ok_per_second)")" "$(f "$(med "write$wc.$2.*" p99_ms)")"
  done
  echo
}
wrow "floor journal (bench/baseline --journal)" floor
for b in base head; do
  rev=$base; [ "$b" = head ] && rev=HEAD
  wrow "raftkms dev node ($rev)" "dev.$b"
  wrow "raftkms 3 nodes, through a follower ($rev)" "follower.$b"
done
errs="$(json_errors "$out"/load/*.json)"
echo
echo "errors in all kms-load runs: $errs"
