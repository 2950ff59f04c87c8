# Helpers shared by the benchmark scripts (sourced, not run).

# loadavg: the 1, 5 and 15 minute load averages.
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }

# median: the median of the numbers on stdin, one a line.
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# json_median FIELD FILE...: the median of FIELD over kms-load --json results.
json_median() {
  local field=$1 f
  shift
  for f in "$@"; do jq -r ".$field" "$f"; done | median
}

# json_errors FILE...: the errors counted in kms-load --json results, summed.
json_errors() {
  local f sum=0 n
  for f in "$@"; do
    n="$(jq '[.errors // {} | .[]] | add // 0' "$f")"
    sum=$((sum + n))
  done
  echo "$sum"
}

# build_pair DIR BASE: kmsd of BASE and of HEAD (from git archive) as
# DIR/base.kmsd and DIR/head.kmsd, and HEAD's kms-load as DIR/kms-load.
build_pair() {
  local w=$1 base=$2 l
  for l in base head; do mkdir -p "$w/$l"; done
  git archive "$base" | tar -x -C "$w/base"
  git archive HEAD | tar -x -C "$w/head"
  for l in base head; do (cd "$w/$l" && go build -o "$w/$l.kmsd" ./cmd/kmsd); done
  (cd "$w/head" && go build -o "$w/kms-load" ./cmd/kms-load)
}

# start_dev_node KMSD DIR [KMSD FLAGS]: a fresh dev node of the binary KMSD
# with its data under DIR, on free loopback ports, in the background; sets
# node_pid and node_creds (its credentials file, written once it serves).
# Returns 1 (its stderr is DIR/stderr) when it did not become ready in 30 s.
start_dev_node() {
  local kmsd=$1 dir=$2 i
  shift 2
  "$kmsd" --dev --data-dir "$dir/data" --http-addr 127.0.0.1:0 --cluster-addr 127.0.0.1:0 \
    --gossip-addr 127.0.0.1:0 "$@" >"$dir/stdout" 2>"$dir/stderr" &
  node_pid=$!
  node_creds="$dir/data/credentials.json"
  for i in $(seq 1 300); do
    jq -e .Endpoint "$node_creds" >/dev/null 2>&1 && return 0
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# instance_client KMSCTL CREDS DIR: gives the dev node's KMS instance an
# application access point for the instance API (a permission policy
# bench-keys over key/* with RbacPermission/Template/CryptoServiceKeyUser and
# no network rule, an AAP bench naming it) and a client key, written as
# DIR/clientkey.json with its password in DIR/password (a random one, never
# printed). Returns 1 when any step fails (kmsctl's error is on stderr).
instance_client() {
  local kmsctl=$1 creds=$2 dir=$3 instance
  instance="$(jq -r '.InstanceId // empty' "$creds")"
  [ -n "$instance" ] || instance="$("$kmsctl" --credentials "$creds" ListKmsInstances |
    jq -r '.KmsInstances.KmsInstance[0].KmsInstanceId')"
  [ -n "$instance" ] && [ "$instance" != null ] || { echo "the dev node has no KMS instance" >&2; return 1; }
  "$kmsctl" --credentials "$creds" CreatePolicy --Name bench-keys --KmsInstance "$instance" \
    --Permissions '["RbacPermission/Template/CryptoServiceKeyUser"]' --Resources '["key/*"]' >/dev/null || return 1
  "$kmsctl" --credentials "$creds" CreateApplicationAccessPoint --Name bench --Policies '["bench-keys"]' >/dev/null || return 1
  # Upper and lower case letters and digits.
  printf 'Bench-%s\n' "$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$dir/password"
  chmod 600 "$dir/password"
  "$kmsctl" --credentials "$creds" client-key create --aap bench --password-file "$dir/password" \
    --out "$dir/clientkey.json" >/dev/null
}

# start_floor BASELINE DIR: the floor server (bench/baseline) with its
# journal under DIR, on a free loopback port, in the background; sets
# floor_pid and floor_creds (a credentials file for kms-load: the floor
# ignores the signature). Returns 1 when it did not start in 5 s.
start_floor() {
  local baseline=$1 dir=$2 i
  "$baseline" --ready-file "$dir/ready" --journal "$dir/journal" >"$dir/stdout" 2>"$dir/stderr" &
  floor_pid=$!
  for i in $(seq 1 100); do
    if [ -s "$dir/ready" ]; then
      printf '{"AccessKeyId":"LTAIbaseline","AccessKeySecret":"unused","Endpoint":"%s"}\n' "$(head -1 "$dir/ready")" >"$dir/creds.json"
      floor_creds="$dir/creds.json"
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# stop_pids PID...: SIGTERM to each process, then wait for each (kmsd stops
# gracefully on SIGTERM); gone or unknown ones are skipped.
stop_pids() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# free_port_run N: the first of N consecutive loopback TCP ports nothing
# listens on now (kms-scale takes its API port and the two next).
free_port_run() {
  python3 - "$1" <<'EOF_PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randint(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit(1)
EOF_PY
}

# free_port: a loopback TCP port nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_cluster3 KMSD KMSCTL DIR [KMSD FLAGS]: three kmsd of the binary KMSD
# (data, logs n1.log… and root key under DIR) on free loopback ports, each
# also with a free --debug-addr when CLUSTER_DEBUG=1, in the background;
# then `operator init`. Sets the arrays cl_pid, cl_http and cl_debug
# (indexes 1–3; cl_pid as soon as the nodes start) and cl_creds. Returns 1
# when they are not all healthy within 30 s or init fails.
start_cluster3() {
  local kmsd=$1 kmsctl=$2 dir=$3 n ok joins
  shift 3
  local -a cport gport extra
  head -c 32 /dev/urandom | base64 >"$dir/root.key"
  chmod 600 "$dir/root.key"
  cl_pid=() cl_http=() cl_debug=() cl_creds=""
  for n in 1 2 3; do cl_http[n]=$(free_port); cport[n]=$(free_port); gport[n]=$(free_port); cl_debug[n]=""; done
  joins="127.0.0.1:${gport[1]},127.0.0.1:${gport[2]},127.0.0.1:${gport[3]}"
  for n in 1 2 3; do
    extra=()
    if [ "${CLUSTER_DEBUG:-0}" = 1 ]; then
      cl_debug[n]=$(free_port)
      extra=(--debug-addr "127.0.0.1:${cl_debug[n]}")
    fi
    "$kmsd" --node-id "n$n" --data-dir "$dir/n$n" --root-key-file "$dir/root.key" \
      --http-addr "127.0.0.1:${cl_http[n]}" --cluster-addr "127.0.0.1:${cport[n]}" --gossip-addr "127.0.0.1:${gport[n]}" \
      --zone "zone-$n" --bootstrap-expect 3 --join "$joins" "${extra[@]}" "$@" >"$dir/n$n.log" 2>&1 &
    cl_pid[n]=$!
  done
  for _ in $(seq 1 150); do
    ok=0
    for n in 1 2 3; do curl -fs "http://127.0.0.1:${cl_http[n]}/v1/health" >/dev/null 2>&1 && ok=$((ok + 1)); done
    [ "$ok" -eq 3 ] && break
    sleep 0.2
  done
  [ "$ok" -eq 3 ] || return 1
  "$kmsctl" --endpoint "http://127.0.0.1:${cl_http[1]}" operator init >"$dir/creds.json" || return 1
  cl_creds="$dir/creds.json"
}

# cluster_leader: the number (1–3) of start_cluster3's node that says it
# leads; nothing when none does.
cluster_leader() {
  local n
  for n in 1 2 3; do
    if [ "$(curl -fs "http://127.0.0.1:${cl_http[n]}/v1/status" | jq -r .RaftState 2>/dev/null)" = Leader ]; then
      echo "$n"
      return 0
    fi
  done
}

# The kms-load runs of bench-table.sh and bench-peers.sh. They read the
# caller's settings: kms_load (the binary), out (results: $out/load/NAME.json
# and kms-load.log), round, concurrency, duration, rate, rate_duration,
# write_concurrency, and cluster_pids (when set: the PIDs whose CPU is also
# summed); and they stop the script through its die on a failed run.

# proc_ticks PID: utime+stime of a process, in clock ticks.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# load_run NAME PID [KMS-LOAD FLAGS]: one kms-load --json run; its JSON gets
# the CPU µs per ok request of process PID as .cpu_us, and of the processes
# in $cluster_pids as .cluster_cpu_us.
load_run() {
  local name=$1 pid=$2 p t0 t1 c0=0 c1=0 tck
  shift 2
  tck="$(getconf CLK_TCK)"
  t0="$(proc_ticks "$pid")"
  for p in ${cluster_pids:-}; do c0=$((c0 + $(proc_ticks "$p"))); done
  "$kms_load" --json "$@" >"$out/load/$name.tmp" 2>>"$out/load/kms-load.log" ||
    die "kms-load failed ($name); see $out/load/kms-load.log"
  t1="$(proc_ticks "$pid")"
  for p in ${cluster_pids:-}; do c1=$((c1 + $(proc_ticks "$p"))); done
  jq --argjson d "$((t1 - t0))" --argjson c "$((c1 - c0))" --argjson tck "$tck" \
    '. + {cpu_us: (if .ok > 0 then $d / $tck * 1e6 / .ok else 0 end),
          cluster_cpu_us: (if .ok > 0 then $c / $tck * 1e6 / .ok else 0 end)}' "$out/load/$name.tmp" >"$out/load/$name.json"
  rm -f "$out/load/$name.tmp"
}

# encrypt_runs LABEL PID [KMS-LOAD FLAGS]: a warm-up, then Encrypt closed loop
# (closed.LABEL.ROUND) and open loop at $rate (open.LABEL.ROUND).
encrypt_runs() {
  local label=$1 pid=$2
  shift 2
  "$kms_load" "$@" --duration 1s --concurrency "$concurrency" >/dev/null 2>>"$out/load/kms-load.log" ||
    die "warm-up failed ($label); see $out/load/kms-load.log"
  load_run "closed.$label.$round" "$pid" "$@" --action Encrypt --concurrency "$concurrency" --duration "$duration"
  load_run "open.$label.$round" "$pid" "$@" --action Encrypt --concurrency "$concurrency" --rate "$rate" --duration "$rate_duration"
}

# write_runs LABEL PID [KMS-LOAD FLAGS, --action among them]: durable writes
# at each of $write_concurrency (writeC.LABEL.ROUND).
write_runs() {
  local label=$1 pid=$2 wc
  shift 2
  for wc in $write_concurrency; do
    load_run "write$wc.$label.$round" "$pid" "$@" --concurrency "$wc" --duration "$duration"
  done
}

# fmt_num X: a figure for a table: 3 significant digits, whole from 100 on,
# "-" for none.
fmt_num() { awk -v x="$1" 'BEGIN { if (x == "nan" || x == "") print "-"; else if (x >= 100) printf "%.0f", x; else printf "%.3g", x }'; }

# The options bench-table.sh and bench-peers.sh share. table_defaults sets
# them; table_opt OPTION VALUE sets one (the caller shifts 2) and returns 1
# when OPTION is not one of them; table_usage NAME prints their lines of the
# usage text; table_checks dies on a bad value or a missing tool.
table_defaults() { rounds=3 duration=4s concurrency=16 rate=2000 rate_duration=8s write_concurrency="8 64" out=""; }
table_opt() {
  case "$1" in
    --rounds) rounds="${2:?}" ;;
    --duration) duration="${2:?}" ;;
    --concurrency) concurrency="${2:?}" ;;
    --rate) rate="${2:?}" ;;
    --rate-duration) rate_duration="${2:?}" ;;
    --write-concurrency) write_concurrency="${2:?}" ;;
    --out) out="${2:?}" ;;
    *) return 1 ;;
  esac
}
table_usage() {
  cat <<EOF2
  --rounds N                 interleaved rounds (default 3)
  --duration D               closed-loop and write windows (default 4s)
  --concurrency N            closed-loop clients (default 16)
  --rate N                   open-loop requests per second (default 2000)
  --rate-duration D          open-loop window (default 8s)
  --write-concurrency LIST   write clients, space-separated (default "8 64")
  --out DIR                  raw results (default .tmp/$1/<date>-<time>)
  -h, --help                 this text
EOF2
}
table_checks() {
  local n
  for n in "$rounds" "$concurrency" "$rate"; do
    case "$n" in '' | *[!0-9]* | 0) die "--rounds, --concurrency and --rate take a positive number" ;; esac
  done
  [ -r /proc/self/stat ] || die "needs Linux /proc"
  command -v jq >/dev/null || die "jq is not installed (make deps installs it)"
}

# table_setup NAME: makes $out (by default .tmp/NAME/<date>-<time> in the
# repository, the current directory) with its load/ folder, and makes it
# absolute; makes a scratch folder $work and an empty list pids of the
# processes started; at exit stops them (stop_all does that at any time)
# and removes $work.
table_setup() {
  [ -n "$out" ] || out=".tmp/$1/$(date -u +%Y%m%d-%H%M%S)"
  mkdir -p "$out/load"
  out="$(cd "$out" && pwd)"
  work="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
}
stop_all() {
  stop_pids "${pids[@]}"
  pids=()
}

# start_follower KMSD KMSCTL DIR WHAT: a 3-node cluster (start_cluster3)
# whose nodes' PIDs join the caller's pids; sets fol_pid, fol_creds (the
# cluster's credentials pointing at a follower) and fol_cluster_pids (the
# three nodes). WHAT names the cluster in the errors.
start_follower() {
  local dir=$3 leader n
  if ! start_cluster3 "$1" "$2" "$dir"; then
    pids+=("${cl_pid[@]}")
    die "the $4 cluster did not become healthy ($dir)"
  fi
  pids+=("${cl_pid[@]}")
  leader="$(cluster_leader)"
  [ -n "$leader" ] || die "no leader in the $4 cluster"
  for n in 1 2 3; do [ "$n" != "$leader" ] && break; done
  jq --arg e "http://127.0.0.1:${cl_http[n]}" '.Endpoint = $e' "$cl_creds" >"$dir/follower.json"
  fol_pid=${cl_pid[n]} fol_creds="$dir/follower.json" fol_cluster_pids="${cl_pid[1]} ${cl_pid[2]} ${cl_pid[3]}"
}

# The tables of bench-table.sh and bench-peers.sh, from the runs in
# $out/load. load_median FIELD GLOB: the median of FIELD over the runs
# GLOB.json; have_runs NAME: whether NAME has runs at all.
load_median() { json_median "$1" "$out"/load/$2.json; }
have_runs() { compgen -G "$out/load/closed.$1.*.json" >/dev/null || compgen -G "$out/load/write*.$1.*.json" >/dev/null; }

# encrypt_table_head; encrypt_row LABEL NAME (nothing when NAME has no
# runs); follower_row LABEL NAME (the follower's CPU and its cluster's).
encrypt_table_head() {
  echo "Encrypt of 64 bytes, keep-alive (closed loop c=$concurrency; open loop at $rate/s)"
  echo
  echo "| system | req/s c=$concurrency | server CPU µs/req | p99 @ $rate/s | p99.9 @ $rate/s |"
  echo "|---|---|---|---|---|"
}
encrypt_row() {
  have_runs "$2" || return 0
  printf '| %s | %s | %s | %s ms | %s ms |\n' "$1" "$(fmt_num "$(load_median ok_per_second "closed.$2.*")")" \
    "$(fmt_num "$(load_median cpu_us "closed.$2.*")")" "$(fmt_num "$(load_median p99_ms "open.$2.*")")" \
    "$(fmt_num "$(load_median p999_ms "open.$2.*")")"
}
follower_row() {
  have_runs "$2" || return 0
  printf '| %s | %s | %s (the three nodes: %s) | %s ms | %s ms |\n' "$1" \
    "$(fmt_num "$(load_median ok_per_second "closed.$2.*")")" "$(fmt_num "$(load_median cpu_us "closed.$2.*")")" \
    "$(fmt_num "$(load_median cluster_cpu_us "closed.$2.*")")" "$(fmt_num "$(load_median p99_ms "open.$2.*")")" \
    "$(fmt_num "$(load_median p999_ms "open.$2.*")")"
}

# write_table_head; write_row LABEL NAME: ok/s, p50 / p99 at each of
# $write_concurrency (nothing when NAME has no runs).
write_table_head() {
  local wc
  printf '| system |'; for wc in $write_concurrency; do printf ' c=%s |' "$wc"; done; echo
  printf '|---|'; for wc in $write_concurrency; do printf -- '---|'; done; echo
}
write_row() {
  local wc
  have_runs "$2" || return 0
  printf '| %s |' "$1"
  for wc in $write_concurrency; do
    printf ' %s/s, %s / %s ms |' "$(fmt_num "$(load_median ok_per_second "write$wc.$2.*")")" \
      "$(fmt_num "$(load_median p50_ms "write$wc.$2.*")")" "$(fmt_num "$(load_median p99_ms "write$wc.$2.*")")"
  done
  echo
}
