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
EOF2
  table_usage bench-table
}

die() { echo "bench-table: $*" >&2; exit 1; }

table_defaults
base=""
while [ $# -gt 0 ]; do
  if table_opt "$@"; then shift 2; continue; fi
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [ -z "$base" ] || die "one BASE revision"; base="$1"; shift ;;
  esac
done
[ -n "$base" ] || { usage >&2; die "name the BASE revision"; }
table_checks
command -v python3 >/dev/null || die "python3 is not installed"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
git rev-parse --verify -q "$base^{commit}" >/dev/null || die "$base is not a revision of this repository"
table_setup bench-table
kms_load="$work/kms-load"

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
  start_follower "$work/$1.kmsd" "$work/kmsctl" "$(mktemp -d "$work/cluster.XXXXXX")" "$1"
  cluster_pids=$fol_cluster_pids
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

echo
echo "bench-table: $base (BASE) and $(git describe --always --dirty) (HEAD) next to bench/baseline, medians of $rounds rounds"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
echo
encrypt_table_head
encrypt_row "bare Go net/http + JSON + AES-GCM (bench/baseline)" floor
for b in base head; do
  rev=$base; [ "$b" = head ] && rev=HEAD
  encrypt_row "raftkms dev node ($rev)" "dev.$b"
  encrypt_row "raftkms + \`--audit-log\` ($rev)" "audit.$b"
  follower_row "raftkms 3 nodes, one follower ($rev)" "follower.$b"
done
echo
echo "Durable writes (raftkms: UpdateKeyDescription, one Raft entry; the floor: a journal line fdatasync'd, group commit): ok/s, p50 / p99"
echo
write_table_head
write_row "floor journal (bench/baseline --journal)" floor
for b in base head; do
  rev=$base; [ "$b" = head ] && rev=HEAD
  write_row "raftkms dev node ($rev)" "dev.$b"
  write_row "raftkms 3 nodes, through a follower ($rev)" "follower.$b"
done
errs="$(json_errors "$out"/load/*.json)"
echo
echo "errors in all kms-load runs: $errs"
