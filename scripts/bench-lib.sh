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
