#!/usr/bin/env bash
# Prints the amazon driver's figures against a local moto server:
#   - the API calls of one simple build (one region, temporary key pair and
#     security group, an AMI), counted and listed;
#   - the wall time of 20 simple builds run at once (--parallel 20).
# Needs moto_server (pip install 'moto[server]') and sshd, as the tests do.
# Usage: drivers/amazon/bench/run.sh [count]   (iterations, default 3)
set -euo pipefail
cd "$(dirname "$0")/../../.."
count="${1:-3}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
IMGBUILD_BENCH_REPORT="$report" go test ./drivers/amazon/ -run '^$' \
  -bench 'BenchmarkSimpleBuild|BenchmarkParallelBuilds20' -benchtime "${count}x" -count 1 \
  | grep -E '^(Benchmark|goos|goarch|cpu|ok|PASS|FAIL)'
echo
# The last figures of each benchmark (go test runs each once with 1x first).
awk '/^calls per simple build/ {block=$0; getline; while ($0 ~ /^  /) {block=block "\n" $0; if (!getline) break}; last=block} END {print last}' "$report"
grep '^20 parallel' "$report" | tail -1
