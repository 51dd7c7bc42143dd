#!/bin/sh
# Benchmark the SSH communicator against OpenSSH on the same sshd, in one run.
# Usage: drivers/ssh/bench/run.sh [go test flags]
# Sizes: IMGBUILD_BENCH_MIB (default 512), IMGBUILD_BENCH_FILES (default 1000),
# IMGBUILD_BENCH_REPS (runs of each large transfer, default 7); IMGBUILD_BENCH_ONLY=
# "upload,tree" runs only those scenarios (connect, upload, download, tree, build).
set -eu
cd "$(dirname "$0")/../../.."
IMGBUILD_BENCH=1 exec go test ./drivers/ssh/bench -run '^TestCompareWithOpenSSH$' -v -count=1 -timeout 60m "$@"
