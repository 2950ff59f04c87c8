#!/usr/bin/env bash
# bench.sh (make bench): raftkms next to the bare floor, in the same run.
#
# Builds kmsd, kms-load and bench/baseline (a bare net/http + JSON + AES-GCM
# server) from this tree, then, round by round, with a fresh dev node and the
# floor both running through the round's load windows (2.–3. and 5.'s dev
# node), each window of one next to the same window of the other (raftkms
# first in odd rounds, the floor first in even ones), so that both see the
# same seconds of a shared machine:
#   1. the Go benchmarks BenchmarkServe_{Encrypt,Decrypt,GenerateDataKey}
#      (api, in process) next to BenchmarkBaseline_* (the process's CPU per
#      request, ns/op, allocs/op, B/op);
#   2. kms-load closed loop (keep-alive, 64-byte plaintexts, --concurrency
#      clients) for each action against a fresh `kmsd --dev` node and the
#      floor: req/s and the server's CPU per request (utime+stime of the
#      server process from /proc/PID/stat over the window ÷ ok requests);
#   3. kms-load open loop at a fixed rate below saturation (Encrypt):
#      p99 and p99.9, timed from each request's intended send time;
#   4. (unless --no-audit) Encrypt closed loop against a dev node with
#      --audit-log, for the cost of the audit log next to the node without;
#   5. (unless --no-writes) durable CreateKey closed loop at each of
#      --write-concurrency, against the dev node (one Raft entry, fsynced,
#      per key) and the floor's journal (one line, fdatasync'd, per key;
#      group commit in both); then (unless --no-cluster-writes) the same
#      through a follower and through the leader of a 3-node cluster
#      (scripts/bench-follower.sh, one run), next to the same journal.
#   6. (unless --no-instance) Encrypt closed loop through the instance API
#      (HTTPS, an RSA-2048 client-key signature per request, the official
#      KMS Instance SDK in kms-load) against a dev node with an application
#      access point and a client key, next to the floor (target 4); then
#      (unless --instance-rate 0) the instance API, the OpenAPI and the
#      floor each at the same open-loop rate, below what the SDK's
#      client-side signing allows on one machine: a node's CPU per request
#      grows as it gets less busy, so only the same rate compares them;
#   7. (unless --scale-keys 0) target 6 scaled down: kms-scale --synthesize
#      with --scale-keys keys (default 100,000; ~15 s): restart to healthy,
#      RSS per key, snapshot save and operator restore (bench-scale does 1M);
#   8. (unless --no-idle) the CPU an idle three-node cluster burns, per node
#      (scripts/bench-idle.sh: ~65 s to settle, then --idle-duration).
# and prints, for each figure, raftkms, the floor and the ratio (medians of
# the rounds). Raw results stay in .tmp/bench/<date>-<time>/. Linux only
# (/proc). Takes ~7 minutes with the defaults (~1.5 of them the idle cluster).
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF2'
usage: scripts/bench.sh [options]     (make bench)

options:
  --rounds N        interleaved rounds (default 3)
  --duration D      closed-loop window per action and server (default 4s)
  --concurrency N   closed-loop clients (default 16)
  --rate N          open-loop requests per second (default 2000)
  --rate-duration D open-loop window (default 8s)
  --actions LIST    closed-loop actions (default Encrypt,Decrypt,GenerateDataKey)
  --bench-count N   samples per Go benchmark (default 3)
  --benchtime T     go test -benchtime (default 3000x)
  --no-go-bench     skip the Go benchmarks
  --no-audit        skip the audit-log row
  --no-writes       skip the durable CreateKey rows
  --no-cluster-writes  skip the 3-node CreateKey rows (through a follower and the leader)
  --write-concurrency LIST  CreateKey clients, space-separated (default "8 64")
  --no-instance     skip the instance API rows
  --instance-rate N open-loop rate for the instance API next to the OpenAPI and the floor (default 500; 0 skips it)
  --scale-keys N    keys for the scaled-down million-key figures (default 100000; 0 skips them)
  --no-idle         skip the idle 3-node cluster line
  --idle-duration S seconds of the idle measurement (default 20)
  --out DIR         raw results (default .tmp/bench/<date>-<time>)
  -h, --help        this text
EOF2
}

die() { echo "bench: $*" >&2; exit 1; }

rounds=3
duration=4s
concurrency=16
rate=2000
rate_duration=8s
actions=Encrypt,Decrypt,GenerateDataKey
bench_count=3
benchtime=3000x
do_go=1
do_audit=1
do_writes=1
do_cluster_writes=1
write_concurrency="8 64"
do_instance=1
instance_rate=500
scale_keys=100000
do_idle=1
idle_duration=20
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift 2 ;;
    --duration) duration="${2:?}"; shift 2 ;;
    --concurrency) concurrency="${2:?}"; shift 2 ;;
    --rate) rate="${2:?}"; shift 2 ;;
    --rate-duration) rate_duration="${2:?}"; shift 2 ;;
    --actions) actions="${2:?}"; shift 2 ;;
    --bench-count) bench_count="${2:?}"; shift 2 ;;
    --benchtime) benchtime="${2:?}"; shift 2 ;;
    --no-go-bench) do_go=0; shift ;;
    --no-audit) do_audit=0; shift ;;
    --no-writes) do_writes=0; shift ;;
    --no-cluster-writes) do_cluster_writes=0; shift ;;
    --write-concurrency) write_concurrency="${2:?}"; shift 2 ;;
    --no-instance) do_instance=0; shift ;;
    --instance-rate) instance_rate="${2:?}"; shift 2 ;;
    --scale-keys) scale_keys="${2:?}"; shift 2 ;;
    --no-idle) do_idle=0; shift ;;
    --idle-duration) idle_duration="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
for n in "$rounds" "$concurrency" "$rate" "$bench_count"; do
  case "$n" in '' | *[!0-9]* | 0) die "--rounds, --concurrency, --rate and --bench-count take a positive number" ;; esac
done
case "$scale_keys" in '' | *[!0-9]*) die "--scale-keys takes a number (0 skips)" ;; esac
[ -r /proc/self/stat ] || die "needs Linux /proc"
command -v go >/dev/null || die "go is not installed"
command -v jq >/dev/null || die "jq is not installed (make deps installs it)"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
[ -n "$out" ] || out=".tmp/bench/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out/load" "$out/go"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")"
tck="$(getconf CLK_TCK)"
srv_pid=""

stop_server() {
  if [ -n "$srv_pid" ]; then
    kill "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
  fi
}
# The round's two servers (the dev node and the floor), both running.
rk_pid="" rk_creds="" bl_pid="" bl_creds=""
stop_round() {
  stop_pids $rk_pid $bl_pid # unquoted: an empty one is no argument
  rk_pid="" bl_pid=""
}
# use TARGET: the next load runs against the round's raftkms or baseline.
use() {
  if [ "$1" = raftkms ]; then srv_pid=$rk_pid creds=$rk_creds; else srv_pid=$bl_pid creds=$bl_creds; fi
}
cleanup() {
  stop_server
  stop_round
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building kmsd, kms-load, baseline and the test binaries; raw results in $out" >&2
go build -o "$work/kmsd" ./cmd/kmsd
go build -o "$work/kms-load" ./cmd/kms-load
go build -o "$work/kmsctl" ./cmd/kmsctl
go build -o "$work/baseline" ./bench/baseline
go build -o "$work/kms-scale" ./cmd/kms-scale
if [ "$do_go" = 1 ]; then
  go test -c -o "$work/api.test" ./api/
  go test -c -o "$work/baseline.test" ./bench/baseline/
fi
load_start="$(loadavg)"

# start_raftkms [KMSD FLAGS]: a fresh dev node on free loopback ports; sets
# srv_pid and creds.
start_raftkms() {
  local dir
  dir="$(mktemp -d "$work/node.XXXXXX")"
  if ! start_dev_node "$work/kmsd" "$dir" "$@"; then
    cp "$dir/stderr" "$out/failed-node.log" 2>/dev/null || true
    die "the dev node did not become ready (log: $out/failed-node.log)"
  fi
  srv_pid=$node_pid creds=$node_creds
}

# start_baseline: the floor on a free loopback port; sets srv_pid and creds.
start_baseline() {
  local dir
  dir="$(mktemp -d "$work/base.XXXXXX")"
  start_floor "$work/baseline" "$dir" || die "the baseline server did not start"
  srv_pid=$floor_pid creds=$floor_creds
}

# cpu_ticks: utime+stime of the server process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$srv_pid/stat"; }

# load NAME TARGET [KMS-LOAD FLAGS]: one kms-load run against the running
# server; its JSON gets the server's CPU µs per ok request as .cpu_us.
load() {
  local name="$1" target="$2"
  shift 2
  local keyflag=()
  [ "$target" = baseline ] && keyflag=(--key key-baseline)
  local t0 t1
  t0="$(cpu_ticks)"
  "$work/kms-load" --credentials "$creds" "${keyflag[@]}" --json "$@" >"$out/load/$name.tmp" 2>>"$out/load/kms-load.log" ||
    die "kms-load failed ($name); see $out/load/kms-load.log"
  t1="$(cpu_ticks)"
  jq --argjson d "$((t1 - t0))" --argjson tck "$tck" \
    '. + {cpu_us: (if .ok > 0 then $d / $tck * 1e6 / .ok else 0 end)}' "$out/load/$name.tmp" >"$out/load/$name.json"
  rm -f "$out/load/$name.tmp"
}

IFS=, read -r -a action_list <<<"$actions"
for round in $(seq 1 "$rounds"); do
  order="raftkms baseline"
  if [ $((round % 2)) -eq 0 ]; then order="baseline raftkms"; fi
  echo "round $round/$rounds: ${order/ /, then } in each window" >&2
  start_raftkms
  rk_pid=$srv_pid rk_creds=$creds
  start_baseline
  bl_pid=$srv_pid bl_creds=$creds
  srv_pid=""
  for target in $order; do
    use "$target"
    # A short warm-up (and, for raftkms, the key kms-load makes) first.
    warm=()
    [ "$target" = baseline ] && warm=(--key key-baseline)
    "$work/kms-load" --credentials "$creds" "${warm[@]}" \
      --duration 1s --concurrency "$concurrency" >/dev/null 2>>"$out/load/kms-load.log" || die "warm-up failed ($target)"
  done
  for action in "${action_list[@]}"; do
    for target in $order; do
      use "$target"
      load "$action.$target.$round" "$target" --action "$action" --concurrency "$concurrency" --duration "$duration"
    done
  done
  for target in $order; do
    use "$target"
    load "rate.$target.$round" "$target" --action Encrypt --concurrency "$concurrency" --rate "$rate" --duration "$rate_duration"
  done
  if [ "$do_instance" = 1 ] && [ "$instance_rate" -gt 0 ]; then
    for target in $order; do
      use "$target"
      load "irate.$target.$round" "$target" --action Encrypt --concurrency "$concurrency" --rate "$instance_rate" --duration "$rate_duration"
    done
  fi
  if [ "$do_writes" = 1 ]; then
    # An instance of the dev node with room for every key of the run.
    use raftkms
    inst="$("$work/kmsctl" --credentials "$creds" operator instance create --type software --name bench-writes \
      --key-quota 10000000 | grep -o 'kst-[a-z0-9]*' | head -1)"
    [ -n "$inst" ] || die "could not create the instance for the writes"
    rk_wcreds="$(dirname "$creds")/writes.json"
    jq --arg i "$inst" '.InstanceId = $i' "$creds" >"$rk_wcreds"
    for wc in $write_concurrency; do
      for target in $order; do
        use "$target"
        [ "$target" = raftkms ] && creds="$rk_wcreds"
        load "CreateKey$wc.$target.$round" "$target" --action CreateKey --concurrency "$wc" --duration "$duration"
      done
    done
  fi
  srv_pid=""
  stop_round
  if [ "$do_audit" = 1 ]; then
    echo "round $round/$rounds: raftkms --audit-log" >&2
    adir="$(mktemp -d "$work/audit.XXXXXX")"
    start_raftkms --audit-log "$adir/audit.log"
    "$work/kms-load" --credentials "$creds" --duration 1s --concurrency "$concurrency" >/dev/null 2>>"$out/load/kms-load.log"
    load "Encrypt.audit.$round" raftkms --action Encrypt --concurrency "$concurrency" --duration "$duration"
    stop_server
  fi
  if [ "$do_instance" = 1 ]; then
    echo "round $round/$rounds: raftkms, instance API" >&2
    start_raftkms --instance-addr 127.0.0.1:0
    for _ in $(seq 1 100); do
      jq -e '.InstanceEndpoint and .InstanceCaFile' "$creds" >/dev/null 2>&1 && break
      sleep 0.1
    done
    idir="$(mktemp -d "$work/instance.XXXXXX")"
    instance_client "$work/kmsctl" "$creds" "$idir" 2>>"$out/load/kms-load.log" ||
      die "could not give the dev node's instance a client key; see $out/load/kms-load.log"
    iargs=(--api instance --client-key-file "$idir/clientkey.json" --client-key-password-file "$idir/password")
    "$work/kms-load" --credentials "$creds" "${iargs[@]}" --duration 1s --concurrency "$concurrency" \
      >/dev/null 2>>"$out/load/kms-load.log" || die "instance API warm-up failed"
    load "Encrypt.instance.$round" raftkms --action Encrypt --concurrency "$concurrency" --duration "$duration" "${iargs[@]}"
    if [ "$instance_rate" -gt 0 ]; then
      load "irate.instance.$round" raftkms --action Encrypt --concurrency "$concurrency" --rate "$instance_rate" --duration "$rate_duration" "${iargs[@]}"
    fi
    stop_server
  fi
done

if [ "$do_go" = 1 ]; then
  : >"$out/go/raftkms.txt"
  : >"$out/go/baseline.txt"
  for i in $(seq 1 "$bench_count"); do
    echo "go benchmarks $i/$bench_count" >&2
    (cd api && "$work/api.test" -test.run '^$' -test.bench 'BenchmarkServe_(Encrypt|Decrypt|GenerateDataKey)$' \
      -test.benchtime "$benchtime" -test.count 1 -test.benchmem) >>"$out/go/raftkms.txt"
    (cd bench/baseline && "$work/baseline.test" -test.run '^$' -test.bench 'BenchmarkBaseline_' \
      -test.benchtime "$benchtime" -test.count 1 -test.benchmem) >>"$out/go/baseline.txt"
  done
fi
if [ "$do_writes" = 1 ] && [ "$do_cluster_writes" = 1 ]; then
  echo "durable CreateKey through a 3-node cluster ($write_concurrency clients, through a follower and the leader)" >&2
  mkdir -p "$work/bin"
  cp "$work/kmsd" "$work/kmsctl" "$work/kms-load" "$work/bin/"
  WRITES_ONLY=1 JSON_DIR="$out/load" WRITE_CONCURRENCY="$write_concurrency" WRITE_DURATION="$duration" \
    "$repo/scripts/bench-follower.sh" "$work/bin" >"$out/cluster-writes.txt" 2>&1 ||
    die "the 3-node write runs failed; see $out/cluster-writes.txt"
fi
if [ "$scale_keys" -gt 0 ]; then
  echo "$scale_keys keys in one dev node (kms-scale --synthesize)" >&2
  sport="$(free_port_run 3)" || die "no three free consecutive loopback ports for kms-scale"
  "$work/kms-scale" --synthesize --keys "$scale_keys" --checkpoints "$scale_keys" --dir "$work/scale" \
    --port "$sport" --kmsd "$work/kmsd" --kmsctl "$work/kmsctl" >"$out/scale.txt" 2>&1 ||
    die "kms-scale failed; see $out/scale.txt"
  rm -rf "$work/scale"
fi
if [ "$do_idle" = 1 ]; then
  echo "idle 3-node cluster (settle, then ${idle_duration} s)" >&2
  "$repo/scripts/bench-idle.sh" --kmsctl "$work/kmsctl" --duration "$idle_duration" "$work/kmsd" >"$out/idle.txt"
fi
load_end="$(loadavg)"

# med NAME-GLOB FIELD: the median of FIELD over the matching runs.
med() { json_median "$2" "$out"/load/$1.json; }
# gomed FILE BENCH UNIT: the median of UNIT of benchmark BENCH.
gomed() {
  awk -v b="$2" -v u="$3" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i <= NF; i++) if ($i == u) print $(i - 1) }' "$1" | median
}
table() { # table COLUMN...: a Markdown table's header and separator
  local c sep="|"
  printf '|'
  for c in "$@"; do printf ' %s |' "$c"; sep="$sep---|"; done
  printf '\n%s\n' "$sep"
}
row() { # row LABEL RAFTKMS BASELINE
  awk -v l="$1" -v a="$2" -v b="$3" 'function f(x) { return (x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x)) }
    BEGIN { printf "| %s | %s | %s | %s |\n", l, f(a), f(b), (b > 0 ? sprintf("%.2f×", a / b) : "-") }'
}

echo
echo "make bench: raftkms ($(git describe --always --dirty)) next to bench/baseline, medians of $rounds rounds"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
echo
table figure raftkms baseline ratio
for action in "${action_list[@]}"; do
  row "$action c=$concurrency req/s" "$(med "$action.raftkms.*" ok_per_second)" "$(med "$action.baseline.*" ok_per_second)"
  row "$action server CPU µs/req" "$(med "$action.raftkms.*" cpu_us)" "$(med "$action.baseline.*" cpu_us)"
done
row "Encrypt @ $rate/s p99 ms" "$(med "rate.raftkms.*" p99_ms)" "$(med "rate.baseline.*" p99_ms)"
row "Encrypt @ $rate/s p99.9 ms" "$(med "rate.raftkms.*" p999_ms)" "$(med "rate.baseline.*" p999_ms)"
row "Encrypt @ $rate/s server CPU µs/req" "$(med "rate.raftkms.*" cpu_us)" "$(med "rate.baseline.*" cpu_us)"
if [ "$do_go" = 1 ]; then
  for b in Encrypt Decrypt GenerateDataKey; do
    for u in cpu-ns/op ns/op allocs/op B/op; do
      row "Go $b $u" "$(gomed "$out/go/raftkms.txt" "BenchmarkServe_$b" "$u")" "$(gomed "$out/go/baseline.txt" "BenchmarkBaseline_$b" "$u")"
    done
  done
fi
echo
echo "generator send lag at $rate/s (p99/max ms): raftkms $(med "rate.raftkms.*" send_lag_p99_ms)/$(med "rate.raftkms.*" send_lag_max_ms), baseline $(med "rate.baseline.*" send_lag_p99_ms)/$(med "rate.baseline.*" send_lag_max_ms)"
errs=0
for f in "$out"/load/*.json; do errs=$((errs + $(json_errors "$f"))); done
echo "errors in all kms-load runs: $errs"
if [ "$do_writes" = 1 ]; then
  echo
  table "durable CreateKey (one dev node; the floor: a journal line fdatasync'd, group commit)" raftkms baseline ratio
  for wc in $write_concurrency; do
    row "c=$wc keys/s" "$(med "CreateKey$wc.raftkms.*" ok_per_second)" "$(med "CreateKey$wc.baseline.*" ok_per_second)"
    row "c=$wc p50 ms" "$(med "CreateKey$wc.raftkms.*" p50_ms)" "$(med "CreateKey$wc.baseline.*" p50_ms)"
    row "c=$wc p99 ms" "$(med "CreateKey$wc.raftkms.*" p99_ms)" "$(med "CreateKey$wc.baseline.*" p99_ms)"
    row "c=$wc server CPU µs/key" "$(med "CreateKey$wc.raftkms.*" cpu_us)" "$(med "CreateKey$wc.baseline.*" cpu_us)"
  done
  if [ "$do_cluster_writes" = 1 ]; then
    echo
    table "durable CreateKey, 3-node cluster (one run; the floor: the same journal as above)" raftkms baseline ratio
    for wc in $write_concurrency; do
      for target in follower leader; do
        row "c=$wc through the $target keys/s" "$(med "Cluster$wc.$target" ok_per_second)" "$(med "CreateKey$wc.baseline.*" ok_per_second)"
        row "c=$wc through the $target p50 ms" "$(med "Cluster$wc.$target" p50_ms)" "$(med "CreateKey$wc.baseline.*" p50_ms)"
        row "c=$wc through the $target CPU µs/key (three nodes)" "$(med "Cluster$wc.$target" cluster_cpu_us)" "$(med "CreateKey$wc.baseline.*" cpu_us)"
      done
    done
    grep '^n[0-9]:' "$out/cluster-writes.txt" | sed 's/^/Raft log, /'
  fi
fi
if [ "$do_audit" = 1 ]; then
  echo
  table "audit log (Encrypt c=$concurrency)" --audit-log without ratio
  row "server CPU µs/req" "$(med "Encrypt.audit.*" cpu_us)" "$(med "Encrypt.raftkms.*" cpu_us)"
  row "req/s" "$(med "Encrypt.audit.*" ok_per_second)" "$(med "Encrypt.raftkms.*" ok_per_second)"
fi
if [ "$do_instance" = 1 ]; then
  echo
  table "instance API (Encrypt c=$concurrency: HTTPS, an RSA-2048 client-key signature per request, official SDK)" "instance API" baseline ratio
  row "req/s" "$(med "Encrypt.instance.*" ok_per_second)" "$(med "Encrypt.baseline.*" ok_per_second)"
  row "server CPU µs/req" "$(med "Encrypt.instance.*" cpu_us)" "$(med "Encrypt.baseline.*" cpu_us)"
  row "server CPU µs/req, next to the OpenAPI's" "$(med "Encrypt.instance.*" cpu_us)" "$(med "Encrypt.raftkms.*" cpu_us)"
  echo "(the SDK signs each request with RSA-2048 on the client, ~1 ms of CPU: on one machine it bounds req/s, not the node)"
  if [ "$instance_rate" -gt 0 ]; then
    echo
    table "instance API at the same rate (Encrypt, open loop at $instance_rate/s: a node's CPU per request grows as it gets less busy)" "instance API" baseline ratio
    row "server CPU µs/req" "$(med "irate.instance.*" cpu_us)" "$(med "irate.baseline.*" cpu_us)"
    row "server CPU µs/req, next to the OpenAPI's at $instance_rate/s" "$(med "irate.instance.*" cpu_us)" "$(med "irate.raftkms.*" cpu_us)"
    row "OpenAPI server CPU µs/req at $instance_rate/s" "$(med "irate.raftkms.*" cpu_us)" "$(med "irate.baseline.*" cpu_us)"
    row "p99 ms" "$(med "irate.instance.*" p99_ms)" "$(med "irate.baseline.*" p99_ms)"
    row "p99.9 ms" "$(med "irate.instance.*" p999_ms)" "$(med "irate.baseline.*" p999_ms)"
    echo "(generator send lag p99 ms: instance API $(med "irate.instance.*" send_lag_p99_ms), OpenAPI $(med "irate.raftkms.*" send_lag_p99_ms), baseline $(med "irate.baseline.*" send_lag_p99_ms))"
    if awk -v l="$(med "irate.instance.*" send_lag_p99_ms)" 'BEGIN { exit !(l > 1) }'; then
      echo "warning: kms-load could not send $instance_rate instance API requests a second here (the SDK signs each with RSA-2048 on this machine's CPUs): the rows above measure the generator, not the node; use a lower --instance-rate"
    fi
  fi
fi
if [ "$scale_keys" -gt 0 ]; then
  echo
  table "a million keys, scaled down: $scale_keys keys (kms-scale --synthesize)" raftkms "target at 1,000,000"
  awk '
    /^restart to healthy:/ { t = $4; sub(/;$/, "", t); printf "| restart to healthy | %s | < 10 s |\n", t
      for (i = 1; i <= NF; i++) if ($i == "per" && $(i + 1) == "key") printf "| RSS per key after the restart | %s B | ≤ 2 KiB |\n", $(i - 2) }
    /^snapshot save:/ { v = $3; sub(/,$/, "", v); printf "| snapshot save | %s | < 30 s |\n", v }
    /^snapshot restore:/ { printf "| operator restore | %s | < 30 s |\n", $3 }
  ' "$out/scale.txt"
fi
if [ "$do_idle" = 1 ]; then
  echo
  sed 's/ (.*//' "$out/idle.txt"
fi
