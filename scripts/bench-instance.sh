#!/usr/bin/env bash
# bench-instance.sh: the instance API's rate through the official KMS Instance
# SDK next to the OpenAPI's, on the same machine in the same run.
#
# Starts one fresh `bin/kmsd --dev` node on free loopback ports, gives its
# instance an application access point (a network-rule-free permission policy
# over key/* with RbacPermission/Template/CryptoServiceKeyUser, an AAP naming
# it, and a client key made with `kmsctl client-key create`), then runs
# kms-load through the OpenAPI and through the instance SDK alternately
# (OpenAPI first in odd rounds, the instance API first in even ones), and
# prints the medians. The node and its data are removed at the end, whatever
# happens; raw results stay in the output directory.
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF_USAGE'
usage: scripts/bench-instance.sh [options]

Needs `make build` (bin/kmsd, bin/kmsctl, bin/kms-load) and jq.

options:
  --rounds N        rounds (default 3)
  --duration D      kms-load --duration of one measurement (default 5s)
  --concurrency N   kms-load --concurrency (default 16)
  --action A        Encrypt, Decrypt or GenerateDataKey (default Encrypt)
  --out DIR         where raw results go (default .tmp/bench-instance/<date>-<time>)
  -h, --help        this text
EOF_USAGE
}

die() { echo "bench-instance: $*" >&2; exit 1; }

rounds=3
duration=5s
concurrency=16
action=Encrypt
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --duration) duration="${2:?--duration needs a value}"; shift 2 ;;
    --concurrency) concurrency="${2:?--concurrency needs a value}"; shift 2 ;;
    --action) action="${2:?--action needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
for n in "$rounds" "$concurrency"; do
  case "$n" in '' | *[!0-9]* | 0) die "--rounds and --concurrency take a positive number" ;; esac
done
case "$action" in Encrypt | Decrypt | GenerateDataKey) ;; *) die "--action: Encrypt, Decrypt or GenerateDataKey" ;; esac
command -v jq >/dev/null || die "jq is not installed (make deps installs it)"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
for b in kmsd kmsctl kms-load; do [ -x "bin/$b" ] || die "bin/$b is missing: run make build"; done
[ -n "$out" ] || out=".tmp/bench-instance/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

node_dir="$(mktemp -d "${TMPDIR:-/tmp}/bench-instance.XXXXXX")"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$node_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load_start="$(loadavg)"

bin/kmsd --dev --data-dir "$node_dir/data" --http-addr 127.0.0.1:0 --cluster-addr 127.0.0.1:0 \
  --gossip-addr 127.0.0.1:0 --instance-addr 127.0.0.1:0 >"$node_dir/stdout" 2>"$node_dir/stderr" &
node_pid=$!
creds="$node_dir/data/credentials.json"
ready=0
for _ in $(seq 1 300); do
  if jq -e '.Endpoint and .InstanceEndpoint and .InstanceCaFile' "$creds" >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$node_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  cp "$node_dir/stderr" "$out/failed-node.log" 2>/dev/null || true
  die "the dev node did not become ready (log: $out/failed-node.log)"
fi

instance_client bin/kmsctl "$creds" "$node_dir" || die "could not give the instance an application access point and a client key"

# node_cpu: the node's CPU time so far (user + system, in clock ticks), or
# empty where /proc is not there.
clk_tck="$(getconf CLK_TCK 2>/dev/null || echo 100)"
node_cpu() { awk '{ print $14 + $15 }' "/proc/$node_pid/stat" 2>/dev/null || true; }

echo "bench-instance: $action, $rounds rounds × $duration, $concurrency clients; raw results in $out" >&2
for round in $(seq 1 "$rounds"); do
  order="openapi instance"
  if [ $((round % 2)) -eq 0 ]; then order="instance openapi"; fi
  for api in $order; do
    args=(--credentials "$creds" --action "$action" --concurrency "$concurrency" --duration "$duration" --json)
    if [ "$api" = instance ]; then
      args+=(--api instance --client-key-file "$node_dir/clientkey.json" --client-key-password-file "$node_dir/password")
    fi
    echo "round $round/$rounds: $api" >&2
    cpu0="$(node_cpu)"
    if ! bin/kms-load "${args[@]}" >"$out/$api.$round.json" 2>>"$out/kms-load.log"; then
      cp "$node_dir/stderr" "$out/failed-node.log" 2>/dev/null || true
      die "kms-load failed ($api, round $round); see $out/kms-load.log"
    fi
    cpu1="$(node_cpu)"
    # The node's CPU per successful request, in µs (includes key setup, which is small).
    if [ -n "$cpu0" ] && [ -n "$cpu1" ]; then
      jq --argjson t "$(( cpu1 - cpu0 ))" --argjson hz "$clk_tck" \
        '. + {node_cpu_us_per_ok: (if .ok > 0 then $t / $hz * 1e6 / .ok else 0 end)}' \
        "$out/$api.$round.json" >"$out/$api.$round.json.tmp" && mv "$out/$api.$round.json.tmp" "$out/$api.$round.json"
    fi
  done
done
load_end="$(loadavg)"

median_of() { json_median "$2" "$out/$1".*.json; }
errors_of() { json_errors "$out/$1".*.json; }

echo
echo "$(git log -1 --format='%h %s')"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
echo "kms-load $action, one dev node, --concurrency $concurrency --duration $duration, median of $rounds rounds:"
echo
echo "| path | ok/s | p50 ms | p90 ms | p99 ms | node CPU µs/request | errors |"
echo "|---|---|---|---|---|---|---|"
for api in openapi instance; do
  case "$api" in
    openapi) label="OpenAPI (HTTP, ACS3-HMAC-SHA256, Go client)" ;;
    instance) label="instance API (HTTPS, RSA client key, official SDK)" ;;
  esac
  awk -v l="$label" -v ok="$(median_of "$api" ok_per_second)" -v p50="$(median_of "$api" p50_ms)" \
    -v p90="$(median_of "$api" p90_ms)" -v p99="$(median_of "$api" p99_ms)" -v e="$(errors_of "$api")" \
    -v cpu="$(median_of "$api" 'node_cpu_us_per_ok // "nan"')" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.2f | %s | %d |\n", l, ok, p50, p90, p99, (cpu == "nan" ? "-" : sprintf("%.0f", cpu)), e }'
done
