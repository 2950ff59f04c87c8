#!/usr/bin/env bash
# bench-pair.sh: measure two commits side by side, run by run, for the rule
# "the numbers in docs/BENCHMARKS.md do not get worse".
#
# Both commits are built from `git archive` into a temporary directory (the
# repository and its worktrees are left alone). For each action, every round
# measures BASE and HEAD (BASE first in odd rounds, HEAD first in even ones), each on a fresh dev node on free loopback ports,
# so that drift of a busy machine hits both alike. Then the Go benchmarks of
# both trees run the same way, alternating one count at a time, and are
# compared with benchstat. Raw results stay in the output directory; the
# nodes and the temporary builds are removed at the end, whatever happens.
set -euo pipefail
# shellcheck source=bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

usage() {
  cat <<'EOF'
usage: scripts/bench-pair.sh [options] BASE HEAD

Builds kmsd and kms-load of the two git revisions BASE and HEAD and compares them:
  1. kms-load against a fresh `kmsd --dev` node of each build, in alternating order, for
     --rounds rounds per action; prints the medians (ok/s, p50, p99) and HEAD/BASE.
  2. the Go benchmarks (go test -bench) of both trees, alternating one -count at a
     time; compared with benchstat (or side by side when benchstat is unavailable).

options:
  --rounds N          rounds per action (default 3)
  --duration D        kms-load --duration of one measurement (default 5s)
  --concurrency N     kms-load --concurrency (default 16)
  --actions LIST      comma list (default Encrypt,Decrypt,GenerateDataKey,DescribeKey,UpdateKeyDescription)
  --bench-pkgs LIST   space-separated packages for go test -bench (default ./crypto/ and every
                      package under ./kms and ./api that has a Benchmark function)
  --bench-count N     samples per Go benchmark (default 5)
  --benchtime T       go test -benchtime (default 1s)
  --no-load           skip the kms-load comparison
  --no-go-bench       skip the Go benchmarks
  --out DIR           where raw results go (default .tmp/bench-pair/<date>-<time>)
  -h, --help          this text

example (what changed on this branch since main):
  scripts/bench-pair.sh --rounds 3 main HEAD

Run it on a quiet machine: the ratios are only as good as the machine is idle. The load
average at the start and the end is printed with the results.
EOF
}

die() { echo "bench-pair: $*" >&2; exit 1; }

rounds=3
duration=5s
concurrency=16
actions=Encrypt,Decrypt,GenerateDataKey,DescribeKey,UpdateKeyDescription
bench_pkgs=""
bench_count=5
benchtime=1s
do_load=1
do_go=1
out=""

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --duration) duration="${2:?--duration needs a value}"; shift 2 ;;
    --concurrency) concurrency="${2:?--concurrency needs a value}"; shift 2 ;;
    --actions) actions="${2:?--actions needs a value}"; shift 2 ;;
    --bench-pkgs) bench_pkgs="${2:?--bench-pkgs needs a value}"; shift 2 ;;
    --bench-count) bench_count="${2:?--bench-count needs a value}"; shift 2 ;;
    --benchtime) benchtime="${2:?--benchtime needs a value}"; shift 2 ;;
    --no-load) do_load=0; shift ;;
    --no-go-bench) do_go=0; shift ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then usage >&2; exit 2; fi
for n in "$rounds" "$concurrency" "$bench_count"; do
  case "$n" in '' | *[!0-9]* | 0) die "--rounds, --concurrency and --bench-count take a positive number" ;; esac
done
command -v go >/dev/null || die "go is not installed"
command -v jq >/dev/null || die "jq is not installed (make deps installs it)"

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$repo"
base_rev="$1"
head_rev="$2"
base_sha="$(git rev-parse --verify --quiet "$base_rev^{commit}")" || die "BASE $base_rev is not a commit"
head_sha="$(git rev-parse --verify --quiet "$head_rev^{commit}")" || die "HEAD $head_rev is not a commit"
[ -n "$out" ] || out=".tmp/bench-pair/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-pair.XXXXXX")"
node_pid=""
node_dir=""

stop_node() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
  fi
  if [ -n "$node_dir" ]; then
    rm -rf "$node_dir"
    node_dir=""
  fi
}
cleanup() {
  stop_node
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# build LABEL SHA: the tree of SHA in $work/LABEL/src, its binaries in $work/LABEL/bin.
build() {
  local label="$1" sha="$2"
  mkdir -p "$work/$label/src" "$work/$label/bin"
  git archive "$sha" | tar -x -C "$work/$label/src"
  echo "building $label ($(git log -1 --format='%h %s' "$sha"))" >&2
  (cd "$work/$label/src" &&
    go build -buildvcs=false -ldflags "-X main.version=$label-${sha:0:12}" -o "$work/$label/bin/kmsd" ./cmd/kmsd &&
    go build -buildvcs=false -o "$work/$label/bin/kms-load" ./cmd/kms-load)
}

# start_node LABEL: a fresh dev node of LABEL's build on free loopback ports;
# sets node_pid, node_dir, creds.
start_node() {
  local label="$1"
  node_dir="$(mktemp -d "$work/node.XXXXXX")"
  if ! start_dev_node "$work/$label/bin/kmsd" "$node_dir"; then
    cp "$node_dir/stderr" "$out/failed-node-$label.log" 2>/dev/null || true
    die "the $label dev node did not become ready (log: $out/failed-node-$label.log)"
  fi
  creds=$node_creds
}

# median_of DIR ACTION LABEL FIELD: the median of FIELD over LABEL's runs of ACTION.
median_of() { json_median "$4" "$1/$2.$3".*.json; }
errors_of() { json_errors "$1/$2.$3".*.json; }

echo "bench-pair: BASE $base_rev ($base_sha) vs HEAD $head_rev ($head_sha); raw results in $out" >&2
load_start="$(loadavg)"
build base "$base_sha"
build head "$head_sha"

if [ "$do_load" = 1 ]; then
  mkdir -p "$out/load"
  IFS=, read -r -a action_list <<<"$actions"
  for action in "${action_list[@]}"; do
    for round in $(seq 1 "$rounds"); do
      # Odd rounds measure BASE first, even rounds HEAD first, so a machine
      # that drifts one way during a pair does not favour one build.
      order="base head"
      if [ $((round % 2)) -eq 0 ]; then order="head base"; fi
      for label in $order; do
        start_node "$label"
        echo "$action round $round/$rounds: $label" >&2
        if ! "$work/$label/bin/kms-load" --credentials "$creds" --action "$action" --concurrency "$concurrency" \
          --duration "$duration" --json >"$out/load/$action.$label.$round.json" 2>>"$out/load/kms-load.log"; then
          cp "$node_dir/stderr" "$out/failed-node-$label.log" 2>/dev/null || true
          die "kms-load failed ($action, $label, round $round); see $out/load/kms-load.log"
        fi
        stop_node
      done
    done
  done
fi

if [ "$do_go" = 1 ]; then
  mkdir -p "$out/go"
  # bench_pkgs_of SRC: the default package list of one tree.
  bench_pkgs_of() {
    (cd "$1" && { echo ./crypto/; { grep -rl --include='*_test.go' '^func Benchmark' kms api 2>/dev/null || true; } |
      xargs -r -n1 dirname | sed 's|^|./|; s|$|/|'; } | sort -u)
  }
  if [ -n "$bench_pkgs" ]; then
    pkgs="$bench_pkgs"
  else
    pkgs="$( { bench_pkgs_of "$work/base/src"; bench_pkgs_of "$work/head/src"; } | sort -u | tr '\n' ' ')"
  fi
  echo "go benchmarks: $pkgs($bench_count × $benchtime each, alternating)" >&2
  : >"$out/go/base.txt"
  : >"$out/go/head.txt"
  # Compile each package's test binary once per tree; then alternate runs.
  for label in base head; do
    for pkg in $pkgs; do
      name="$(echo "$pkg" | tr -c 'a-zA-Z0-9\n' _)"
      if [ -d "$work/$label/src/$pkg" ]; then
        (cd "$work/$label/src" && go test -buildvcs=false -c -o "$work/$label/bin/$name.test" "$pkg")
      fi
    done
  done
  for i in $(seq 1 "$bench_count"); do
    for label in base head; do
      for pkg in $pkgs; do
        name="$(echo "$pkg" | tr -c 'a-zA-Z0-9\n' _)"
        [ -x "$work/$label/bin/$name.test" ] || continue
        (cd "$work/$label/src/$pkg" && "$work/$label/bin/$name.test" -test.run '^$' -test.bench . \
          -test.benchtime "$benchtime" -test.count 1) >>"$out/go/$label.txt"
      done
    done
  done
fi
load_end="$(loadavg)"

# The results, after all the progress lines.
echo
echo "BASE $base_rev ($(git log -1 --format='%h %s' "$base_sha"))"
echo "HEAD $head_rev ($(git log -1 --format='%h %s' "$head_sha"))"
echo "load average: $load_start at the start, $load_end at the end; $(nproc) CPUs"
if [ "$do_load" = 1 ]; then
  echo
  echo "kms-load, one dev node, --concurrency $concurrency --duration $duration, median of $rounds rounds:"
  echo
  echo "| action | base ok/s | head ok/s | head/base | base p50 ms | head p50 ms | base p99 ms | head p99 ms | errors base/head |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for action in "${action_list[@]}"; do
    b_ok="$(median_of "$out/load" "$action" base ok_per_second)"
    h_ok="$(median_of "$out/load" "$action" head ok_per_second)"
    awk -v a="$action" -v bo="$b_ok" -v ho="$h_ok" \
      -v bp50="$(median_of "$out/load" "$action" base p50_ms)" -v hp50="$(median_of "$out/load" "$action" head p50_ms)" \
      -v bp99="$(median_of "$out/load" "$action" base p99_ms)" -v hp99="$(median_of "$out/load" "$action" head p99_ms)" \
      -v be="$(errors_of "$out/load" "$action" base)" -v he="$(errors_of "$out/load" "$action" head)" \
      'BEGIN { printf "| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %.2f | %.2f | %d/%d |\n",
        a, bo, ho, (bo > 0 ? ho / bo : 0), bp50, hp50, bp99, hp99, be, he }'
  done
fi
if [ "$do_go" = 1 ]; then
  echo
  echo "go test -bench (benchtime $benchtime, $bench_count samples each):"
  echo
  benchstat=()
  if command -v benchstat >/dev/null; then
    benchstat=(benchstat)
  elif (cd "$work" && timeout 300 go run golang.org/x/perf/cmd/benchstat@latest -h >/dev/null 2>&1); then
    benchstat=(go run golang.org/x/perf/cmd/benchstat@latest)
  fi
  if [ ${#benchstat[@]} -gt 0 ]; then
    (cd "$out/go" && "${benchstat[@]}" base=base.txt head=head.txt)
  else
    echo "(benchstat unavailable: medians side by side)"
    awk '
      FNR == 1 { label = (FILENAME ~ /base.txt$/) ? "base" : "head" }
      /^Benchmark/ { for (i = 3; i < NF; i++) if ($(i + 1) == "ns/op") { k = $1; n[label, k]++; v[label, k, n[label, k]] = $i; names[k] = 1 } }
      function med(l, k,   m, i, j, t, a) {
        m = n[l, k]; if (!m) return 0
        for (i = 1; i <= m; i++) a[i] = v[l, k, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
      }
      END {
        printf "%-50s %14s %14s %10s\n", "benchmark", "base ns/op", "head ns/op", "head/base"
        for (k in names) { b = med("base", k); h = med("head", k)
          printf "%-50s %14.1f %14.1f %10s\n", k, b, h, (b > 0 && h > 0) ? sprintf("%.3f", h / b) : "-" }
      }' "$out/go/base.txt" "$out/go/head.txt"
  fi
fi
