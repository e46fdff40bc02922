#!/bin/sh
# The golden archives of tests/golden (see its README.md): good ones read
# back exactly, bad ones fail naming what is wrong, unsupported ones say so.
set -eu
. "$top_srcdir/tests/lib.sh"
G="$top_srcdir/tests/golden"

# good-hello: content, name, and mtime to the nanosecond.
mkdir h
expect_status 0 "$BTZUNPACK" -C h "$G/good-hello.btz"
printf 'Hello, btz!\n' > want
same_file want h/hello.txt
expect_eq "$(stat -c %y h/hello.txt)" "2026-01-02 03:04:05.500000000 +0000"
expect_eq "$(stat -c %a h/hello.txt)" 644

# good-tree: every file's sha256, the links, the directory mode.
mkdir t
expect_status 0 "$BTZUNPACK" -t "$G/good-tree.btz"
expect_status 0 "$BTZUNPACK" -C t "$G/good-tree.btz"
(cd t/tree && sha256sum -c --quiet "$G/good-tree.sha256") ||
	fail "good-tree.btz: contents differ from good-tree.sha256"
expect_eq "$(readlink t/tree/link)" a.txt
expect_eq "$(stat -c %i t/tree/a.txt)" "$(stat -c %i t/tree/sub/hard)"
expect_eq "$(stat -c %a t/tree/sub)" 750
expect_eq "$(stat -c %y t/tree/sub/fox.txt)" \
	"2020-05-06 07:08:09.123456789 +0000"
"$BTZUNPACK" -l "$G/good-tree.btz" > list
grep -q ' repeat  *tree/zeros$' list || fail "zeros not listed as repeat"
grep -q '^ *200000 .* text .* tree/sub/fox.txt$' list ||
	fail "fox.txt not listed as 200000 bytes of text"

mkdir e
expect_status 0 "$BTZUNPACK" -C e "$G/good-empty-file.btz"
[ -f e/tree/empty ] && [ ! -s e/tree/empty ] || fail "good-empty-file: no empty file"
expect_status 0 "$BTZUNPACK" -C e "$G/good-empty-dir.btz"
[ -d e/emptydir ] || fail "good-empty-dir: no directory"

# bad-*: exit 1, the message names the problem, nothing is left behind.
check_bad() { # FILE PATTERN
	rm -rf x && mkdir x
	expect_status 1 "$BTZUNPACK" -C x "$G/$1"
	expect_err "$2"
	expect_err "$1"
	expect_status 1 "$BTZUNPACK" -t "$G/$1"
	expect_err "$2"
}
check_bad bad-truncated.btz "no footer (truncated"
[ -z "$(ls -A x)" ] || fail "bad-truncated.btz: extraction wrote $(ls -A x)"
check_bad bad-index-flip.btz "index checksum mismatch"
[ -z "$(ls -A x)" ] || fail "bad-index-flip.btz: extraction wrote $(ls -A x)"
check_bad bad-payload-flip.btz "chunk 2: lzma2 data is corrupt"
for f in a.txt sub/hard sub/fox.txt; do
	no_file "x/tree/$f"
done
[ -f x/tree/zeros ] || fail "bad-payload-flip: intact member zeros missing"
check_bad bad-unknown-method.btz "unknown method 0x7f"
no_file x/a

for f in bad-dotdot bad-abs bad-symlink; do
	rm -rf x && mkdir x
	expect_status 1 "$BTZUNPACK" -C x "$G/$f.btz"
	expect_err "evil"
	expect_status 0 "$BTZUNPACK" -t "$G/$f.btz"
done
no_file ../evil
no_file /tmp/btz-golden-evil/evil

# unsupported-*: a clear "unsupported" or "needs model", exit 1.
expect_status 1 "$BTZUNPACK" -t "$G/unsupported-required-feature.btz"
expect_err "unsupported required features 0x00000100"
expect_status 1 "$BTZUNPACK" -t "$G/unsupported-version.btz"
expect_err "unsupported format version 2"
expect_status 1 "$BTZUNPACK" -t "$G/unsupported-model.btz"
expect_err "needs model 'text-small' (fingerprint b72e1105"
expect_err "searched"
# Listing needs only the index, so it works without the model.
expect_status 0 "$BTZUNPACK" -l "$G/unsupported-model.btz" >/dev/null
