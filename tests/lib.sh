# Shared helpers for the shell tests of btzpack and btzunpack.
#
# Sourced by tests/NAME.sh with top_srcdir and top_builddir (absolute) in the
# environment.  Provides a fresh scratch directory (the current directory on
# return), removed when the test passes or skips and kept when it fails, and
# helpers that print both the expected and the actual value on failure.
# POSIX sh; GNU coreutils and findutils are assumed.

: "${top_srcdir:?top_srcdir must be set}"
: "${top_builddir:?top_builddir must be set}"
: "${BSDTAR=}"
: "${GNUTAR=}"

BTZPACK="$top_builddir/btzpack"
BTZUNPACK="$top_builddir/btzunpack"
TEST_NAME=$(basename "$0" .sh)
SCRATCH="$top_builddir/tests/tmp.$TEST_NAME.$$"
ERR="$SCRATCH/.stderr"	# stderr of the last expect_status command
export LC_ALL=C TZ=UTC
# No installed model may change what a test packs: tests name their models.
BTZ_MODELS_DIR="$top_builddir/tests/no-models-here"
export BTZ_MODELS_DIR
unset BTZ_MODEL_PATH

for _p in "$BTZPACK" "$BTZUNPACK"; do
	if [ ! -x "$_p" ]; then
		echo "$TEST_NAME: $_p is not built" >&2
		exit 1
	fi
done

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cd "$SCRATCH"

_cleanup() {
	_st=$?
	cd "$top_builddir"
	case $_st in
	0|77)	chmod -R u+rwx "$SCRATCH" 2>/dev/null || :
		rm -rf "$SCRATCH" ;;
	*)	echo "$TEST_NAME: FAILED (exit $_st); scratch kept in $SCRATCH" >&2 ;;
	esac
	exit $_st
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail MESSAGE...: report and exit 1.
fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}

# soft_fail MESSAGE...: report a failure but go on with the other checks;
# `finish` then exits 1.
DEFERRED=0
soft_fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	DEFERRED=$((DEFERRED + 1))
}

# finish: end of a test: exit 1 if any soft_fail was reported, else 0.
finish() {
	[ "$DEFERRED" -eq 0 ] || fail "$DEFERRED failure(s) reported above"
	exit 0
}

# status_of CMD [ARG]...: run CMD (stderr to "$ERR") and set ST to its
# exit status, without failing.
status_of() {
	ST=0
	"$@" 2>"$ERR" || ST=$?
}

# skip MESSAGE...: report and exit 77.
skip() {
	echo "$TEST_NAME: SKIP: $*" >&2
	exit 77
}

# note MESSAGE...: progress line on stderr (shows in the .log).
note() {
	echo "$TEST_NAME: $*" >&2
}

# expect_status N CMD [ARG]...: run CMD; its stderr goes to "$ERR" (and is
# echoed on failure); its stdout is left alone, so callers may redirect it.
# Fails when the exit status is not N.
expect_status() {
	_want=$1
	shift
	_got=0
	"$@" 2>"$ERR" || _got=$?
	if [ "$_got" != "$_want" ]; then
		echo "--- stderr of: $*" >&2
		cat "$ERR" >&2
		echo "---" >&2
		fail "exit status of '$*': expected $_want, got $_got"
	fi
}

# expect_err PATTERN: the stderr of the last expect_status matches the
# fixed string PATTERN.
expect_err() {
	if ! grep -F -q -e "$1" "$ERR"; then
		echo "--- stderr was:" >&2
		cat "$ERR" >&2
		echo "---" >&2
		fail "stderr: expected a message containing '$1'"
	fi
}

# expect_no_err: the stderr of the last expect_status is empty.
expect_no_err() {
	if [ -s "$ERR" ]; then
		echo "--- stderr was:" >&2
		cat "$ERR" >&2
		echo "---" >&2
		fail "stderr: expected nothing"
	fi
}

# expect_grep PATTERN FILE: FILE contains the fixed string PATTERN.
expect_grep() {
	if ! grep -F -q -e "$1" "$2"; then
		echo "--- $2 was:" >&2
		cat "$2" >&2
		echo "---" >&2
		fail "$2: expected a line containing '$1'"
	fi
}

# expect_eq EXPECTED ACTUAL [WHAT]
expect_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

# same_file EXPECTED ACTUAL: byte-for-byte equal.
same_file() {
	[ -f "$2" ] || fail "$2: missing (expected a copy of $1)"
	if ! cmp "$1" "$2" >&2; then
		fail "$2 differs from $1 (sizes: expected $(wc -c <"$1"), got $(wc -c <"$2"))"
	fi
}

# no_file PATH...: none of PATH exists (not even as a dangling link).
no_file() {
	for _f; do
		if [ -e "$_f" ] || [ -L "$_f" ]; then
			fail "$_f: expected not to exist, but it does: $(ls -ld "$_f")"
		fi
	done
}

# tree_listing DIR: one line per entry under DIR (DIR itself excluded):
# relative name, type, permission bits, mtime with nanoseconds, and for
# files the size, for symlinks the target.  Newlines in names are
# shown as \001 so that each entry stays on one line.
tree_listing() {
	(cd "$1" && find . -mindepth 1 \
		\( -type f -printf '%P\t%y\t%m\t%T@\t%s\0' \) -o \
		\( -type l -printf '%P\t%y\t%m\t%T@\t->%l\0' \) -o \
		\( -printf '%P\t%y\t%m\t%T@\0' \)) |
		tr '\n\0' '\001\n' | sort
}

# link_groups DIR: for every set of two or more regular files under DIR that
# share an inode, their names (the hard-link grouping, independent of inode
# numbers and of links from outside DIR).
link_groups() {
	(cd "$1" && find . -mindepth 1 -type f -links +1 -printf '%i\t%P\0') |
		tr '\n\0' '\001\n' | sort -t "$(printf '\t')" -k1,1 -k2 |
		awk -F '\t' '
			$1 != ino { if (n > 1) print grp; ino = $1; grp = $2; n = 1; next }
			{ grp = grp " == " $2; n++ }
			END { if (n > 1) print grp }'
}

# _same_by FUNC WHAT A B: FUNC's output for trees A and B is identical.
_same_by() {
	"$1" "$3" >"$SCRATCH/.tree.expected"
	"$1" "$4" >"$SCRATCH/.tree.actual"
	if ! cmp -s "$SCRATCH/.tree.expected" "$SCRATCH/.tree.actual"; then
		echo "--- $2 of $3 (expected) vs $4 (actual):" >&2
		diff "$SCRATCH/.tree.expected" "$SCRATCH/.tree.actual" >&2 || :
		fail "$2 of $3 and $4 differ"
	fi
}

# same_tree EXPECTED ACTUAL: two directory trees are identical: names,
# types, permission bits, mtimes to the nanosecond, sizes, symlink targets,
# hard-link grouping and file contents.
same_tree() {
	[ -d "$2" ] || fail "same_tree: $2 is not a directory"
	_same_by tree_listing "listing" "$1" "$2"
	_same_by link_groups "hard-link groups" "$1" "$2"
	# Contents, file by file (names may hold any byte: use -exec, not a pipe).
	_abs2=$(cd "$2" && pwd)
	(cd "$1" && find . -type f -exec sh -c '
		for f; do
			cmp "$f" "$0/$f" >&2 || { echo "content differs: $f" >&2; exit 1; }
		done' "$_abs2" {} +) || fail "file contents of $1 and $2 differ"
}

# le N BYTES: N as BYTES bytes, little-endian.
le() {
	_n=$1 _k=0
	while [ "$_k" -lt "$2" ]; do
		printf "\\$(printf %03o $((_n % 256)))"
		_n=$((_n / 256))
		_k=$((_k + 1))
	done
}

# make_text N FILE: N bytes of deterministic English-like ASCII text.
make_text() {
	awk -v n="$1" 'BEGIN {
		split("the of and to in is that it was for on are as with his they " \
		      "at be this from have or by one had not but what all were when " \
		      "we there can an your which their said if do will each about " \
		      "how up out them then she many some so these would other into " \
		      "has more her two like him see time could no make than first", w, " ")
		nw = 0; for (k in w) nw++
		x = 12345; total = 0; line = ""
		while (total < n) {
			x = (x * 1103515245 + 12345) % 2147483648
			word = w[1 + int(x / 65536) % nw]
			if (length(line) + length(word) > 70) {
				print line; total += length(line) + 1; line = word
			} else
				line = (line == "") ? word : line " " word
		}
	}' | head -c "$1" >"$2"
}

# make_random N FILE [SEED]: N bytes of deterministic pseudo-random data.
make_random() {
	_seed=${3:-1}
	if command -v openssl >/dev/null 2>&1; then
		head -c "$1" /dev/zero |
			openssl enc -aes-128-ctr -nosalt \
				-K "$(printf '%032x' "$_seed")" \
				-iv 00000000000000000000000000000000 >"$2"
	else
		awk -v n="$1" -v x="$_seed" 'BEGIN {
			for (i = 0; i < n; i++) {
				x = (x * 1103515245 + 12345) % 2147483648
				printf "%c", 1 + int(x / 8388608) % 255
			}
		}' >"$2"
	fi
	[ "$(wc -c <"$2")" -eq "$1" ] || fail "make_random: could not make $1 bytes"
}

# make_const N BYTE FILE: N copies of the character BYTE.
make_const() {
	head -c "$1" /dev/zero | tr '\000' "$2" >"$3"
}
