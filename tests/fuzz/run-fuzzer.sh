#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-fuzzer.sh FUZZER CORPUS_DIR: run a libFuzzer binary for FUZZ_SECONDS
# (default 30) on a scratch copy of the committed corpus, so the tree is not
# changed. A crash fails the test and leaves the input in the artifact dir
# named in the log: add it to CORPUS_DIR to make it a regression test.
set -eu
fuzzer=$1
corpus=$2
seconds=${FUZZ_SECONDS:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
mkdir -p "${FUZZ_ARTIFACTS:-/tmp/procnotify-fuzz-artifacts}"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
        -artifact_prefix="${FUZZ_ARTIFACTS:-/tmp/procnotify-fuzz-artifacts}/$(basename "$fuzzer")-" \
        -print_final_stats=1 "$work"
