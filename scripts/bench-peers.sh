#!/usr/bin/env bash
# bench-peers.sh: issue 16's two tables — raftkms next to the floor and the
# peers it was compared with, all measured in one window by one generator
# (kms-load), rounds interleaved.
#
#   scripts/bench-peers.sh [options] [--openbao BAO] [--local-kms LOCAL_KMS]
#
# The peers are binaries built from their own sources; this repository holds
# none of their code and no script that builds them (docs/BENCHMARKS.md
# says how they were built). Without them the script measures raftkms and
# the floor only.
#   - OpenBao (`bao`): one node, integrated Raft storage on disk (not -dev,
#     which keeps everything in memory), initialised and unsealed with one
#     key share, the transit engine at transit/; a second instance of it with
#     a file audit device for the audited row.
#   - local-kms (nsmithuk/local-kms): the AWS KMS emulator (no
#     authentication, no fsync, no HA), on a loopback port.
# Each round measures each system fresh, in rotating order:
#   - Encrypt of 64 bytes, keep-alive: closed loop with --concurrency
#     clients (req/s, the server's CPU per request from /proc/PID/stat) and
#     open loop at --rate requests/s (p99, p99.9, each request timed from
#     its intended send);
#   - durable key creation at each of --write-concurrency: raftkms CreateKey
#     on a dev node and through a follower of a 3-node cluster, OpenBao's
#     transit key create, local-kms's CreateKey, and the floor's journal
#     line (fdatasync'd, group commit).
# It prints the medians as Markdown tables; raw JSON stays in
# .tmp/bench-peers/<date>-<time>/. Needs bin/kmsd, bin/kmsctl and
# bin/kms-load (make build); ~2 minutes a round with both peers.
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF2'
usage: scripts/bench-peers.sh [options]

options:
  --openbao BAO              OpenBao's bao binary (its rows are left out without it)
  --local-kms BIN            local-kms's binary (its rows are left out without it)
EOF2
  table_usage bench-peers
}

die() { echo "bench-peers: $*" >&2; exit 1; }

table_defaults
bao="" lkms=""
while [ $# -gt 0 ]; do
  if table_opt "$@"; then shift 2; continue; fi
  case "$1" in
    --openbao) bao="${2:?}"; shift 2 ;;
    --local-kms) lkms="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
table_checks
[ -z "$bao" ] || [ -x "$bao" ] || die "--openbao $bao is not an executable"
[ -z "$lkms" ] || [ -x "$lkms" ] || die "--local-kms $lkms is not an executable"
command -v curl >/dev/null || die "curl is not installed"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
for b in kmsd kmsctl kms-load; do [ -x "bin/$b" ] || die "bin/$b is missing (make build)"; done
table_setup bench-peers
kms_load=bin/kms-load

go build -o "$work/baseline" ./bench/baseline
load_start="$(loadavg)"

# wide_instance CREDS OUT: OUT is CREDS naming a new KMS instance with room
# for every key of the write runs (an instance holds 1,000 by default).
wide_instance() {
  local inst
  inst="$(bin/kmsctl --credentials "$1" operator instance create --type software --name bench-writes \
    --key-quota 10000000 | grep -o 'kst-[a-z0-9]*' | head -1)"
  [ -n "$inst" ] || die "could not create the instance for the writes"
  jq --arg i "$inst" '.InstanceId = $i' "$1" >"$2"
}

# start_openbao DIR [audit]: one OpenBao node with Raft storage under DIR on
# free loopback ports, initialised, unsealed, the transit engine enabled
# (and, with "audit", a file audit device in its configuration); sets bao_pid, bao_url and writes
# its root token to DIR/token.
start_openbao() {
  local dir=$1 port cport i
  port="$(free_port)" cport="$(free_port)"
  mkdir -p "$dir/raft"
  cat >"$dir/config.hcl" <<EOF_HCL
storage "raft" {
  path    = "$dir/raft"
  node_id = "bench"
}
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:$port"
cluster_addr  = "http://127.0.0.1:$cport"
disable_mlock = true
log_level     = "warn"
EOF_HCL
  # OpenBao takes audit devices from its configuration only.
  if [ "${2:-}" = audit ]; then
    cat >>"$dir/config.hcl" <<EOF_HCL
audit "file" "bench" {
  options {
    file_path = "$dir/audit.log"
  }
}
EOF_HCL
  fi
  "$bao" server -config="$dir/config.hcl" >"$dir/server.log" 2>&1 &
  bao_pid=$!
  pids+=("$bao_pid")
  bao_url="http://127.0.0.1:$port"
  for i in $(seq 1 100); do
    curl -s -o /dev/null "$bao_url/v1/sys/health" && break
    kill -0 "$bao_pid" 2>/dev/null || die "OpenBao did not start (log: $dir/server.log)"
    sleep 0.1
  done
  BAO_ADDR="$bao_url" "$bao" operator init -key-shares=1 -key-threshold=1 -format=json >"$dir/init.json" ||
    die "OpenBao's init failed (log: $dir/server.log)"
  BAO_ADDR="$bao_url" "$bao" operator unseal "$(jq -r '.unseal_keys_b64[0]' "$dir/init.json")" >/dev/null ||
    die "OpenBao's unseal failed"
  jq -r .root_token "$dir/init.json" >"$dir/token"
  rm -f "$dir/init.json"
  # Active (a leader of its Raft) when sys/health answers 200.
  for i in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$bao_url/v1/sys/health")" = 200 ] && break
    sleep 0.1
  done
  BAO_ADDR="$bao_url" BAO_TOKEN="$(cat "$dir/token")" "$bao" secrets enable transit >/dev/null ||
    die "could not enable OpenBao's transit engine"
}

measure() { # measure floor|local-kms|openbao|raftkms
  local what=$1 dir
  echo "round $round/$rounds: $what $(loadavg)" >&2
  dir="$(mktemp -d "$work/$what.XXXXXX")"
  cluster_pids=""
  case "$what" in
    floor)
      start_floor "$work/baseline" "$dir" || { pids+=("$floor_pid"); die "the floor did not start"; }
      pids+=("$floor_pid")
      encrypt_runs floor "$floor_pid" --credentials "$floor_creds" --key key-baseline
      write_runs floor "$floor_pid" --credentials "$floor_creds" --key key-baseline --action CreateKey
      ;;
    local-kms)
      local port
      port="$(free_port)"
      PORT="$port" KMS_DATA_PATH="$dir/data" "$lkms" >"$dir/log" 2>&1 &
      pids+=("$!")
      local up=0
      for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && { up=1; break; }
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
      done
      [ "$up" = 1 ] || die "local-kms did not start (log: $dir/log)"
      encrypt_runs local-kms "${pids[-1]}" --api local-kms --endpoints "http://127.0.0.1:$port"
      write_runs local-kms "${pids[-1]}" --api local-kms --endpoints "http://127.0.0.1:$port" --action CreateKey
      ;;
    openbao)
      start_openbao "$dir"
      encrypt_runs openbao "$bao_pid" --api openbao --endpoints "$bao_url" --token-file "$dir/token"
      write_runs openbao "$bao_pid" --api openbao --endpoints "$bao_url" --token-file "$dir/token" --action CreateKey
      stop_all
      mkdir -p "$dir/audit"
      start_openbao "$dir/audit" audit
      encrypt_runs openbao-audit "$bao_pid" --api openbao --endpoints "$bao_url" --token-file "$dir/audit/token"
      [ -s "$dir/audit/audit.log" ] || die "OpenBao's audit device wrote nothing ($dir/audit/server.log)"
      ;;
    raftkms)
      start_dev_node bin/kmsd "$dir" || { pids+=("$node_pid"); die "the dev node did not become ready ($dir/stderr)"; }
      pids+=("$node_pid")
      encrypt_runs dev "$node_pid" --credentials "$node_creds"
      wide_instance "$node_creds" "$dir/writes.json"
      write_runs dev "$node_pid" --credentials "$dir/writes.json" --action CreateKey
      stop_all
      mkdir -p "$dir/audit"
      start_dev_node bin/kmsd "$dir/audit" --audit-log "$dir/audit/audit.log" || { pids+=("$node_pid"); die "the audited dev node did not become ready"; }
      pids+=("$node_pid")
      encrypt_runs dev-audit "$node_pid" --credentials "$node_creds"
      stop_all
      mkdir -p "$dir/cluster"
      start_follower bin/kmsd bin/kmsctl "$dir/cluster" 3-node
      wide_instance "$fol_creds" "$dir/follower-writes.json"
      cluster_pids=$fol_cluster_pids
      encrypt_runs follower "$fol_pid" --credentials "$fol_creds"
      write_runs follower "$fol_pid" --credentials "$dir/follower-writes.json" --action CreateKey
      cluster_pids=""
      ;;
  esac
  stop_all
}

systems="floor raftkms"
[ -n "$lkms" ] && systems="$systems local-kms"
[ -n "$bao" ] && systems="$systems openbao"
read -r -a order <<<"$systems"
for round in $(seq 1 "$rounds"); do
  # Rotate the order each round, so no system always follows the same one.
  for i in $(seq 0 $((${#order[@]} - 1))); do
    measure "${order[(i + round - 1) % ${#order[@]}]}"
  done
done
load_end="$(loadavg)"

echo
echo "bench-peers: raftkms $(git describe --always --dirty) next to bench/baseline and its peers, medians of $rounds rounds"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
echo
encrypt_table_head
encrypt_row "bare Go net/http + JSON + AES-GCM (bench/baseline)" floor
encrypt_row "local-kms (no authentication, no HA)" local-kms
encrypt_row "OpenBao transit, raft storage" openbao
encrypt_row "OpenBao + file audit" openbao-audit
encrypt_row "raftkms dev node" dev
encrypt_row "raftkms + \`--audit-log\`" dev-audit
follower_row "raftkms 3 nodes, one follower" follower
echo
echo "Durable key creation (raftkms CreateKey; OpenBao's transit key create; local-kms's CreateKey, not fsync'd; the floor: a journal line fdatasync'd, group commit): keys/s, p50, p99"
echo
write_table_head
write_row "floor journal (bench/baseline --journal)" floor
write_row "local-kms (no fsync)" local-kms
write_row "OpenBao transit key create, 1 node" openbao
write_row "raftkms dev node" dev
write_row "raftkms 3 nodes, through a follower" follower
if have_runs openbao; then
  echo
  printf 'raftkms through a follower / OpenBao:'
  for wc in $write_concurrency; do
    printf ' c=%s %s×' "$wc" "$(awk -v a="$(load_median ok_per_second "write$wc.follower.*")" -v b="$(load_median ok_per_second "write$wc.openbao.*")" \
      'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  done
  echo " (target 5: ≥ 3×)"
fi
errs="$(json_errors "$out"/load/*.json)"
echo
echo "errors in all kms-load runs: $errs"
