#!/bin/sh
# Replays the fuzz corpus and the golden archives through the fuzz target
# (built here as an ordinary program), so every input the fuzzer kept keeps
# passing on every compiler and under the sanitizers in CI.
set -eu
. "$top_srcdir/tests/lib.sh"
"$top_builddir/tests/fuzz_replay" "$top_srcdir/tests/fuzz-corpus" \
	"$top_srcdir/tests/golden" > out || fail "replay failed"
grep -q "inputs replayed" out || fail "replay printed nothing"
