#!/usr/bin/env bash
# bench-soak.sh: does a node stay flat under sustained load? (issue 16,
# item 7). One fresh `kmsd --dev` node, kms-load Encrypt closed loop with
# C clients (default 16) for MINUTES one-minute windows (default 30); after
# each window: ok/s, the requests refused (by code: 429 once the nonce
# cache is at its bound), the node's CPU per answered request over the
# window (utime+stime from /proc/PID/stat ÷ ok requests), p99, max
# latency, RSS and peak RSS.
# At the end: CPU per request of the last window against the
# first, and the peak RSS.
#
#   make build && scripts/bench-soak.sh [MINUTES] [C] [KMSD FLAGS...]   (WINDOW=60s: one window's length)
#
# RATE=N makes the load an open loop at N requests per second (kms-load
# --rate, C workers serving it) instead of C clients as fast as they go: a
# rate the nonce cache keeps inside its bound (the default bound holds
# ~7,000 signed requests a second) soaks the node without shedding.
set -euo pipefail
minutes=${1:-30}
conc=${2:-16}
shift $(($# >= 2 ? 2 : $#))
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
for b in kmsd kmsctl kms-load; do [ -x "bin/$b" ] || { echo "bench-soak: bin/$b missing (make build)" >&2; exit 1; }; done
command -v jq >/dev/null || { echo "bench-soak: jq is not installed" >&2; exit 1; }
# shellcheck source=bench-lib.sh
. scripts/bench-lib.sh
w="$(mktemp -d "${TMPDIR:-/tmp}/bench-soak.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$w"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bin/kmsd --dev --data-dir "$w/data" --http-addr 127.0.0.1:0 --cluster-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 "$@" \
  >"$w/out" 2>"$w/err" &
pid=$!
for _ in $(seq 300); do jq -e .Endpoint "$w/data/credentials.json" >/dev/null 2>&1 && break; sleep 0.1; done
creds="$w/data/credentials.json"
endpoint="$(jq -r .Endpoint "$creds")"
key="$(bin/kmsctl --credentials "$creds" CreateKey --DKMSInstanceId "$(jq -r .InstanceId "$creds")" --Description soak | jq -r .KeyMetadata.KeyId)"
[ -n "$key" ] || { echo "bench-soak: could not create a key" >&2; exit 1; }
keyflag=(--key "$key")
tck=$(getconf CLK_TCK)
rss() { awk -v f="$1" '$1 == f":" { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
echo "soak: ${minutes} × 1 min of Encrypt × $conc clients${RATE:+ at $RATE/s} against $endpoint (pid $pid); load average $(loadavg); $(nproc) CPUs"
echo "| minute | ok/s | refused | CPU µs/req | p99 ms | max ms | RSS MiB | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
first="" last=""
for m in $(seq 1 "$minutes"); do
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  bin/kms-load --credentials "$creds" "${keyflag[@]}" --action Encrypt --concurrency "$conc" ${RATE:+--rate "$RATE"} --duration "${WINDOW:-60s}" --json >"$w/m.json" 2>/dev/null
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  cpu="$(jq --argjson d "$((t1 - t0))" --argjson tck "$tck" '(if .ok > 0 then $d / $tck * 1e6 / .ok else 0 end) * 10 | round / 10' "$w/m.json")"
  [ -n "$first" ] || first=$cpu
  last=$cpu
  printf '| %d | %.0f | %s | %s | %.2f | %.1f | %s | %s |\n' "$m" "$(jq .ok_per_second "$w/m.json")" \
    "$(jq -r '[.errors // {} | to_entries[] | "\(.value) \(.key)"] | join(", ") | if . == "" then "0" else . end' "$w/m.json")" "$cpu" \
    "$(jq .p99_ms "$w/m.json")" "$(jq .max_ms "$w/m.json")" "$(rss VmRSS)" "$(rss VmHWM)"
done
awk -v a="$first" -v b="$last" 'BEGIN { printf "last minute / first minute CPU per request: %.2f×\n", (a > 0 ? b / a : 0) }'
echo "peak RSS $(rss VmHWM) MiB; load average at the end $(loadavg)"
