#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-fuzzer.sh FUZZER CORPUS_DIR: run a libFuzzer binary for FUZZ_SECONDS
# (default 30) on a scratch copy of the committed corpus, so the tree is not
# changed. A crash fails the test and leaves the input in FUZZ_ARTIFACTS
# (default /tmp/procnotify-fuzz-artifacts), also printed below in base64 for
# a CI log: add it to CORPUS_DIR to make it a regression test (the
# fuzz-corpus unit tests replay every file there).
set -eu
fuzzer=$1
corpus=$2
seconds=${FUZZ_SECONDS:-30}
artifacts=${FUZZ_ARTIFACTS:-/tmp/procnotify-fuzz-artifacts}
prefix="$artifacts/$(basename "$fuzzer")-"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
mkdir -p "$artifacts"
rc=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 \
        -artifact_prefix="$prefix" -print_final_stats=1 "$work" || rc=$?
if [ "$rc" -ne 0 ]; then
        for f in "$prefix"*; do
                [ -f "$f" ] || continue
                echo "run-fuzzer.sh: input that failed: $f; as base64 (| base64 -d > $corpus/NAME):"
                base64 "$f"
        done
fi
exit "$rc"
