#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time each.
# Minimization of a new interesting input can take long; it is capped so a
# short run stays short.
set -euo pipefail
fuzztime="${1:-5s}"
cd "$(dirname "$0")/.."
status=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+).*$/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  echo "fuzz $pkg $name ($fuzztime)"
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime=5s "$pkg" >/tmp/raftkms-fuzz.log 2>&1; then
    cat /tmp/raftkms-fuzz.log
    status=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v '/\.' )
exit $status
