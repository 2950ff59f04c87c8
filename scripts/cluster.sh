#!/usr/bin/env bash
# Starts (or stops) a three-node raftkms cluster on loopback for trying things out.
#   scripts/cluster.sh start   # nodes n1..n3, API on 127.0.0.1:9700, :9710, :9720
#   scripts/cluster.sh stop
# State, logs and credentials live in .tmp/cluster (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tmp/cluster
bin=bin
cmd="${1:-start}"

stop() {
  pids=()
  for n in 1 2 3; do
    if [ -f "$dir/n$n.pid" ]; then
      pid="$(cat "$dir/n$n.pid")"
      kill "$pid" 2>/dev/null && pids+=("$pid")
      rm -f "$dir/n$n.pid"
    fi
  done
  # Wait for a graceful exit (leadership hand-over, gossip leave).
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  echo "cluster stopped (state kept in $dir)"
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
if [ "$cmd" != start ]; then echo "usage: $0 start|stop" >&2; exit 2; fi

mkdir -p "$dir"
[ -f "$dir/root.key" ] || { head -c 32 /dev/urandom | base64 > "$dir/root.key"; chmod 600 "$dir/root.key"; }
joins="127.0.0.1:9702,127.0.0.1:9712,127.0.0.1:9722"
for n in 1 2 3; do
  if [ -f "$dir/n$n.pid" ] && kill -0 "$(cat "$dir/n$n.pid")" 2>/dev/null; then
    echo "n$n already running"; continue
  fi
  base=$((9700 + (n - 1) * 10))
  "$bin/kmsd" --node-id "n$n" --data-dir "$dir/n$n" --root-key-file "$dir/root.key" \
    --http-addr "127.0.0.1:$base" --cluster-addr "127.0.0.1:$((base + 1))" --gossip-addr "127.0.0.1:$((base + 2))" \
    --zone "zone-$n" --bootstrap-expect 3 --join "$joins" >"$dir/n$n.log" 2>&1 &
  echo $! > "$dir/n$n.pid"
done

printf 'waiting for the cluster to elect a leader'
for _ in $(seq 1 100); do
  ok=0
  for n in 1 2 3; do
    base=$((9700 + (n - 1) * 10))
    if curl -fs "http://127.0.0.1:$base/v1/health" >/dev/null 2>&1; then ok=$((ok + 1)); fi
  done
  [ "$ok" -eq 3 ] && break
  printf .; sleep 0.2
done
echo
if [ "$ok" -ne 3 ]; then echo "the cluster did not become healthy; see $dir/n*.log" >&2; exit 1; fi

if [ ! -s "$dir/credentials.json" ]; then
  "$bin/kmsctl" --endpoint http://127.0.0.1:9700 operator init > "$dir/credentials.json.tmp"
  mv "$dir/credentials.json.tmp" "$dir/credentials.json"
  chmod 600 "$dir/credentials.json"
fi
cat <<MSG
Three nodes are running: n1 http://127.0.0.1:9700, n2 http://127.0.0.1:9710, n3 http://127.0.0.1:9720.
Credentials: $dir/credentials.json

  export KMS_CREDENTIALS=$dir/credentials.json
  bin/kmsctl operator members
  bin/kmsctl --endpoint http://127.0.0.1:9710 ListKeys

Logs: $dir/n1.log ...   Stop: make cluster-stop
MSG
