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
