#!/bin/sh
# Secure extraction: members with absolute names, '..' components, or that
# would be written through a symbolic link are refused with an error naming
# the member, and nothing is written outside the extraction directory;
# -P allows them.  The hostile archives come from a helper program that
# writes valid archives (every checksum right) with such members:
#   HELPER OUT.btz abs DIR       member DIR/evil (a file holding "evil\n")
#   HELPER OUT.btz dotdot        member ../evil
#   HELPER OUT.btz symlink DIR   symlink member l -> DIR, then file l/evil
#   HELPER OUT.btz hardlink      hard-link member h naming ../outside
set -eu
. "$top_srcdir/tests/lib.sh"

HELPER=${MKHOSTILE-}
if [ -z "$HELPER" ]; then
	for h in "$top_builddir/tests/mkhostile" "$top_builddir/tests/mkarchive"; do
		if [ -x "$h" ]; then
			HELPER=$h
			break
		fi
	done
fi
[ -n "$HELPER" ] && [ -x "$HELPER" ] ||
	skip "no hostile-archive helper (tests/mkhostile or tests/mkarchive) built yet"

printf 'evil\n' >evil.expected

# snapshot: every name under the scratch directory outside the extraction
# directories x.* (and the helpers' own files), with type and size.
snapshot() {
	find "$SCRATCH" \( -path "$SCRATCH/x.*" -o -name '.stderr' -o -name '.snap.*' \) \
		-prune -o -printf '%p %y %s\n' | sort
}

# refused ARCHIVE MEMBER: extraction into a fresh x.ARCHIVE exits 1 with a
# message naming MEMBER and changes nothing outside x.ARCHIVE.
refused() {
	_dir="$SCRATCH/x.$1"
	mkdir -p "$_dir"
	snapshot >"$SCRATCH/.snap.before"
	expect_status 1 "$BTZUNPACK" -C "$_dir" "$1"
	expect_err "$2"
	snapshot >"$SCRATCH/.snap.after"
	if ! cmp -s "$SCRATCH/.snap.before" "$SCRATCH/.snap.after"; then
		diff "$SCRATCH/.snap.before" "$SCRATCH/.snap.after" >&2 || :
		fail "extracting $1 changed files outside $_dir"
	fi
	# Also as a tar export and a listing: those write nothing to disk and
	# must work (the names are only data there).
	expect_status 0 "$BTZUNPACK" -l "$1" >/dev/null
	expect_status 0 "$BTZUNPACK" -t "$1"
}

# --- an absolute member name ------------------------------------------------------
ABS="$SCRATCH/abs-target"
mkdir "$ABS"
"$HELPER" abs.btz abs "$ABS" || fail "$HELPER abs.btz abs $ABS exited $?"
"$BTZUNPACK" -l abs.btz | grep -F -q "$ABS/evil" ||
	fail "helper: abs.btz does not list the member $ABS/evil"
refused abs.btz "$ABS/evil"
no_file "$ABS/evil"
# Selecting the member by name does not help.
mkdir x.abs-sel
expect_status 1 "$BTZUNPACK" -C x.abs-sel abs.btz "$ABS/evil"
no_file "$ABS/evil"
# With -P it is extracted where its name says.
mkdir x.abs-P
expect_status 0 "$BTZUNPACK" -P -C x.abs-P abs.btz
same_file evil.expected "$ABS/evil"
# ... and never overwritten without -f.
echo keep >"$ABS/evil"
status_of "$BTZUNPACK" -P -C x.abs-P abs.btz
[ "$ST" -eq 1 ] || soft_fail "-P extraction over an existing $ABS/evil: expected exit 1, got $ST"
[ -f "$ABS/evil" ] && [ "$(cat "$ABS/evil")" = keep ] ||
	soft_fail "-P extraction without -f changed or removed the existing $ABS/evil"
rm -f "$ABS/evil"

# --- a '..' component ----------------------------------------------------------------
mkdir -p dd
"$HELPER" dotdot.btz dotdot || fail "$HELPER dotdot.btz dotdot exited $?"
# Extract from inside dd/x.dotdot so that ../evil would land in dd/evil.
mkdir dd/x.dotdot
snapshot >.snap.before
st=0
(cd dd/x.dotdot && "$BTZUNPACK" ../../dotdot.btz) 2>"$ERR" || st=$?
expect_eq 1 "$st" "exit status of extracting dotdot.btz"
expect_err "../evil"
no_file dd/evil evil
snapshot >.snap.after
cmp -s .snap.before .snap.after || {
	diff .snap.before .snap.after >&2 || :
	fail "extracting dotdot.btz changed files outside dd/x.dotdot"
}
refused dotdot.btz "../evil"
no_file evil
# With -P it goes where it says.
mkdir -p dd/x.dotdot-P
(cd dd/x.dotdot-P && "$BTZUNPACK" -P ../../dotdot.btz) 2>"$ERR" ||
	fail "btzunpack -P dotdot.btz exited $?: $(cat "$ERR")"
same_file evil.expected dd/evil

# --- writing through a symbolic link ---------------------------------------------
OUT="$SCRATCH/link-target"
mkdir "$OUT"
"$HELPER" symlink.btz symlink "$OUT" || fail "$HELPER symlink.btz symlink $OUT exited $?"
refused symlink.btz "l/evil"
no_file "$OUT/evil"
ls_out=$(ls -A "$OUT")
expect_eq "" "$ls_out" "files in $OUT after extracting symlink.btz"
# Also when the link already exists in the destination (from an earlier run).
mkdir x.pre
ln -s "$OUT" x.pre/l
"$HELPER" symlink2.btz symlink "$OUT"
# With -f, libarchive's unlink mode replaces the link in the way by a
# directory instead of refusing; either way nothing is written through it.
expect_status 0 "$BTZUNPACK" -f -C x.pre symlink2.btz
no_file "$OUT/evil"
[ -d x.pre/l ] && [ ! -L x.pre/l ] && [ -f x.pre/l/evil ] ||
	fail "x.pre/l: expected a real directory holding evil"
# With -P the file is written through the link.
mkdir x.symlink-P
expect_status 0 "$BTZUNPACK" -P -C x.symlink-P symlink.btz
same_file evil.expected "$OUT/evil"
expect_eq "$OUT" "$(readlink x.symlink-P/l)" "target of the extracted link"

# --- a hard link naming something outside ------------------------------------------
mkdir -p hl
echo secret >hl/outside
cp hl/outside hl/outside.orig
if "$HELPER" hardlink.btz hardlink 2>/dev/null; then
	mkdir hl/x.hard
	st=0
	(cd hl/x.hard && "$BTZUNPACK" ../../hardlink.btz) 2>"$ERR" || st=$?
	expect_eq 1 "$st" "exit status of extracting hardlink.btz"
	expect_err "h"
	no_file hl/x.hard/h
	same_file hl/outside.orig hl/outside
	expect_eq 1 "$(stat -c %h hl/outside)" "link count of hl/outside"
else
	note "helper cannot make a hard-link archive: that case skipped"
fi

finish
