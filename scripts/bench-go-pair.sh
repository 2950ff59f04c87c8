#!/usr/bin/env bash
# bench-go-pair.sh: the api package's Serve benchmarks of two commits, paired.
#
#   scripts/bench-go-pair.sh BASE [COUNT] [BENCH-REGEXP]
#   (defaults: 6, 'BenchmarkServe_(Encrypt|Decrypt|GenerateDataKey|EncryptV1)$'; BT=5000x sets -benchtime)
#
# Both trees come from `git archive` (BASE and HEAD) into a temporary
# directory; HEAD's api/serve_bench_test.go is copied into BASE's tree, so
# both run the same benchmark code. The test binaries then run one count at a
# time, alternating, and benchstat compares them (cpu-ns/op, the process's
# CPU per request, is the steady figure on a shared machine). Raw results:
# .tmp/bench-go-pair/{base,head}.txt.
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
base=$1
count=${2:-6}
bench=${3:-'BenchmarkServe_(Encrypt|Decrypt|GenerateDataKey|EncryptV1)$'}
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
out=.tmp/bench-go-pair
mkdir -p "$out"
w="$(mktemp -d "${TMPDIR:-/tmp}/bench-go-pair.XXXXXX")"
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/base" "$w/head"
git archive "$base" | tar -x -C "$w/base"
git archive HEAD | tar -x -C "$w/head"
cp api/serve_bench_test.go "$w/base/api/serve_bench_test.go"
(cd "$w/base" && go test -c -o "$w/base.test" ./api/)
(cd "$w/head" && go test -c -o "$w/head.test" ./api/)
: >"$out/base.txt"
: >"$out/head.txt"
for i in $(seq 1 "$count"); do
  for l in base head; do
    (cd "$w/$l/api" && "$w/$l.test" -test.run '^$' -test.bench "$bench" -test.benchtime "${BT:-5000x}" \
      -test.count 1 -test.benchmem) | grep '^Bench' >>"$out/$l.txt"
  done
done
if command -v benchstat >/dev/null; then
  benchstat base="$out/base.txt" head="$out/head.txt"
elif [ -x "$(go env GOPATH)/bin/benchstat" ]; then
  "$(go env GOPATH)/bin/benchstat" base="$out/base.txt" head="$out/head.txt"
else
  go run golang.org/x/perf/cmd/benchstat@latest base="$out/base.txt" head="$out/head.txt"
fi
