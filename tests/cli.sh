#!/bin/sh
# The command-line contract of btzpack and btzunpack: exit codes, messages,
# default names, overwrite protection, terminals, skipped special files and
# no partial output on a signal or an error.
set -eu
. "$top_srcdir/tests/lib.sh"

seq 1 2000 >file
cp file file.orig
mkdir dir
seq 1 100 >dir/a
make_random 5000 dir/b 3

# --- help, version, bad options -----------------------------------------
for p in "$BTZPACK" "$BTZUNPACK"; do
	n=$(basename "$p")
	expect_status 0 "$p" -h >help.out
	expect_grep Usage help.out
	expect_status 0 "$p" --help >help.out
	expect_grep Usage help.out
	expect_status 0 "$p" -V >version.out
	expect_grep "$n" version.out
	expect_status 0 "$p" --version >version.out
	expect_grep "$n" version.out
	expect_status 1 "$p" --no-such-option
	expect_err no-such-option
	expect_status 1 "$p" -Z
done
expect_status 1 "$BTZPACK" --chunk-size=1K -o small.btz file
no_file small.btz
expect_status 1 "$BTZPACK" --chunk-size=65M -o big.btz file
no_file big.btz
expect_status 1 "$BTZPACK" -T -1 -o neg.btz file
no_file neg.btz

# --- missing and wrong inputs ----------------------------------------------
expect_status 1 "$BTZPACK" -o missing.btz no-such-path
expect_err no-such-path
no_file missing.btz
expect_status 1 "$BTZPACK" no-such-path
expect_err no-such-path
no_file no-such-path.btz
# One good and one missing input: still an error, no archive.
expect_status 1 "$BTZPACK" -o mixed.btz file no-such-path
expect_err no-such-path
no_file mixed.btz
expect_status 1 "$BTZUNPACK" no-such-archive.btz
expect_err no-such-archive.btz
expect_status 1 "$BTZUNPACK" -l no-such-archive.btz
expect_err no-such-archive.btz
expect_status 1 "$BTZUNPACK" file
expect_err "not a btz archive"
expect_err file
expect_status 1 "$BTZUNPACK" -t file
expect_err "not a btz archive"
: >empty
expect_status 1 "$BTZUNPACK" -l empty
expect_err empty

# --- default output names, overwrite protection ------------------------------
expect_status 0 "$BTZPACK" file
[ -f file.btz ] || fail "btzpack file: expected file.btz to be written"
same_file file.orig file	# btzpack keeps its input
cp file.btz file.btz.orig
expect_status 1 "$BTZPACK" file
expect_err file.btz
same_file file.btz.orig file.btz
# -f overwrites (with a different archive: another chunk size and preset).
expect_status 0 "$BTZPACK" -f -0 --chunk-size=64K file
cmp -s file.btz.orig file.btz && fail "btzpack -f file: file.btz was not rewritten"
expect_status 0 "$BTZUNPACK" -c file.btz >f.out
same_file file.orig f.out
# -o FILE is protected too.
echo 'do not touch' >taken.btz
cp taken.btz taken.orig
expect_status 1 "$BTZPACK" -o taken.btz file
expect_err taken.btz
same_file taken.orig taken.btz
expect_status 0 "$BTZPACK" -f -o taken.btz file
expect_status 0 "$BTZUNPACK" -t taken.btz
# A trailing slash is ignored in the default name.
expect_status 0 "$BTZPACK" dir/
[ -f dir.btz ] || fail "btzpack dir/: expected dir.btz, got: $(ls)"
no_file dir/.btz
# Several inputs need -o.
expect_status 1 "$BTZPACK" file dir
expect_err -o
expect_status 0 "$BTZPACK" -o two.btz file dir
expect_status 0 "$BTZUNPACK" -t two.btz
# A FIFO (or a device such as /dev/null) is written in place, not replaced
# by a regular file, with or without -f.
for force in "" -f; do
	rm -f fifo fifo.out
	mkfifo fifo
	cat fifo >fifo.out &
	expect_status 0 "$BTZPACK" $force -o fifo file
	wait
	[ -p fifo ] || fail "btzpack $force -o fifo replaced the FIFO"
	expect_status 0 "$BTZUNPACK" -t fifo.out
	rm -f fifo
	mkfifo fifo
	cat fifo >fifo.tar &
	expect_status 0 "$BTZUNPACK" $force --to-tar=fifo file.btz
	wait
	[ -p fifo ] || fail "btzunpack $force --to-tar=fifo replaced the FIFO"
	[ -s fifo.tar ] || fail "btzunpack --to-tar=fifo wrote nothing"
done
rm -f fifo

# --- btzunpack: -c, members, exclusive modes ---------------------------------
expect_status 1 "$BTZUNPACK" -c two.btz >c.out
expect_err "two.btz"
expect_status 0 "$BTZUNPACK" -c two.btz dir/a >c.out
same_file dir/a c.out
expect_status 0 "$BTZUNPACK" -c two.btz file >c.out
same_file file c.out
expect_status 1 "$BTZUNPACK" -c two.btz dir/nope >c.out
expect_err dir/nope
expect_status 1 "$BTZUNPACK" -l two.btz dir/nope
expect_err dir/nope
expect_status 1 "$BTZUNPACK" -t two.btz dir/nope
expect_err dir/nope
mkdir nope.out
expect_status 1 "$BTZUNPACK" -C nope.out two.btz dir/nope
expect_err dir/nope
expect_status 0 "$BTZUNPACK" -l two.btz dir/a >l.out
expect_grep dir/a l.out
if grep -q ' file$' l.out; then fail "-l two.btz dir/a also listed 'file'"; fi
for modes in "-l -t" "-l -c" "-t -c" "-l --to-tar=x.tar" "-t --to-tar=x.tar" "-c --to-tar=x.tar"; do
	# shellcheck disable=SC2086
	expect_status 1 "$BTZUNPACK" $modes two.btz >/dev/null
done
no_file x.tar
expect_status 0 "$BTZUNPACK" -t two.btz >t.out
[ ! -s t.out ] || fail "btzunpack -t wrote to stdout: $(head -c 200 t.out)"
# The archive on stdin ('-' and none).
expect_status 0 "$BTZUNPACK" -c - file <two.btz >c.out
same_file file c.out
expect_status 0 "$BTZUNPACK" -l <two.btz >l.out
expect_grep dir/b l.out

# --- extraction never overwrites without -f ---------------------------------
mkdir ex
expect_status 0 "$BTZUNPACK" -C ex two.btz
same_file file ex/file
same_file dir/b ex/dir/b
echo 'precious' >ex/file
echo 'precious too' >ex/dir/a
cp ex/file precious1
cp ex/dir/a precious2
status_of "$BTZUNPACK" -C ex two.btz
[ "$ST" -eq 1 ] || soft_fail "extraction over existing files: expected exit 1, got $ST"
grep -q 'file' "$ERR" || soft_fail "extraction over existing files: no message naming the member: $(cat "$ERR")"
if [ -f ex/file ] && cmp -s precious1 ex/file; then :; else
	soft_fail "btzunpack -C ex two.btz (no -f) destroyed the existing ex/file: expected content 'precious', got $(if [ -e ex/file ]; then echo "'$(head -c 40 ex/file)'"; else echo 'no file'; fi)"
fi
if [ -f ex/dir/a ] && cmp -s precious2 ex/dir/a; then :; else
	soft_fail "btzunpack -C ex two.btz (no -f) destroyed the existing ex/dir/a: got $(if [ -e ex/dir/a ]; then echo "'$(head -c 40 ex/dir/a)'"; else echo 'no file'; fi)"
fi
# With -f they are replaced.
expect_status 0 "$BTZUNPACK" -f -C ex two.btz
same_file file ex/file
same_file dir/a ex/dir/a
same_file dir/b ex/dir/b
# A single-file archive extracted beside a changed original.
mkdir ex2
cp file ex2/file
echo 'edited' >ex2/file
status_of "$BTZUNPACK" -C ex2 file.btz
[ "$ST" -eq 1 ] || soft_fail "btzunpack -C ex2 file.btz over ex2/file: expected exit 1, got $ST"
if [ -f ex2/file ] && [ "$(cat ex2/file)" = edited ]; then :; else
	soft_fail "btzunpack -C ex2 file.btz (no -f) changed or removed the existing ex2/file"
fi

# --- terminals ------------------------------------------------------------------
# tty_status CMD: runs CMD on a pseudo-terminal; prints its exit status.
tty_status() {
	script -qec "$1; echo STATUS=\$?" /dev/null </dev/null |
		tr -d '\r' | tee tty.out | grep -a -o 'STATUS=[0-9]*' | sed 's/STATUS=//'
}
if command -v script >/dev/null 2>&1 && script -qec true /dev/null >/dev/null 2>&1; then
	expect_eq 1 "$(tty_status "'$BTZPACK' -o - file")" \
		"exit status of btzpack -o - file on a terminal"
	expect_grep terminal tty.out
	expect_eq 1 "$(tty_status "'$BTZPACK' <file")" \
		"exit status of btzpack <file with stdout on a terminal"
	expect_grep terminal tty.out
	expect_eq 1 "$(tty_status "'$BTZUNPACK' --to-tar=- two.btz")" \
		"exit status of btzunpack --to-tar=- on a terminal"
	expect_grep terminal tty.out
	# -f allows it (btzpack writes the archive to the terminal).
	expect_eq 0 "$(tty_status "'$BTZPACK' -f -o - dir/a")" \
		"exit status of btzpack -f -o - on a terminal"
else
	note "script(1) missing or unusable: terminal checks skipped"
fi

# --- special files are skipped with a warning, exit 2 -------------------------
mkdir special
seq 1 10 >special/before
mkfifo special/fifo
seq 11 20 >special/after
expect_status 2 "$BTZPACK" -o special.btz special
expect_err special/fifo
expect_status 0 "$BTZUNPACK" -t special.btz
"$BTZUNPACK" -l special.btz >special.list
expect_grep special/before special.list
expect_grep special/after special.list
if grep -q fifo special.list; then fail "special.btz lists the FIFO"; fi
mkdir special.out
expect_status 0 "$BTZUNPACK" -C special.out special.btz
same_file special/before special.out/special/before
same_file special/after special.out/special/after
no_file special.out/special/fifo
expect_status 2 "$BTZPACK" -q -o special-q.btz special
expect_no_err
cmp special.btz special-q.btz >&2 || fail "-q changed the archive"
# A FIFO named on the command line is skipped the same way.
expect_status 2 "$BTZPACK" -o fifo-arg.btz special/fifo special/after
expect_err special/fifo

# --- no partial output ----------------------------------------------------------
# A failing import (a truncated .tar.gz) leaves no archive and no temporary.
if [ -n "$BSDTAR" ] && [ -x "$BSDTAR" ]; then
	"$BSDTAR" -czf good.tar.gz dir file
	head -c 300 good.tar.gz >trunc.tar.gz
	expect_status 1 "$BTZPACK" --from-tar=trunc.tar.gz -o trunc.btz
	expect_err trunc.tar.gz
	no_file trunc.btz
fi

# leftovers PATTERN: names in the scratch directory matching PATTERN.
leftovers() {
	ls -A | grep -e "$1" || :
}

# A signal while reading a slow pipe: the archive is not left behind, nor
# its temporary.  $! is btzpack itself (the pipe's last command).
( head -c 1000000 /dev/zero; sleep 3 ) | "$BTZPACK" --chunk-size=64K -o k.btz &
pid=$!
sleep 1
[ -n "$(leftovers '^\.k\.btz\.')" ] ||
	note "no temporary .k.btz.* seen while packing (written elsewhere?)"
kill -TERM $pid
st=0
wait $pid || st=$?
[ "$st" -ne 0 ] || fail "btzpack killed by SIGTERM exited 0"
no_file k.btz
expect_eq "" "$(leftovers '^\.k\.btz\.')" "temporaries of k.btz left after SIGTERM"
# The same with SIGINT and SIGHUP. A background job of a non-interactive
# shell starts with SIGINT ignored, and a job under nohup with SIGHUP
# ignored; btzpack rightly keeps an inherited "ignore", so restore the
# defaults with env(1) where it can, else skip these two.
if env --default-signal true 2>/dev/null; then
	sigs="INT HUP"
	dflint="env --default-signal"
else
	dflint=
	sigs=
	note "env --default-signal unsupported: SIGINT and SIGHUP cases skipped"
fi
for sig in $sigs; do
	( head -c 1000000 /dev/zero; sleep 3 ) |
		$dflint "$BTZPACK" --chunk-size=64K -o k$sig.btz &
	pid=$!
	sleep 1
	kill -$sig $pid
	st=0
	wait $pid || st=$?
	[ "$st" -ne 0 ] || fail "btzpack killed by SIG$sig exited 0"
	no_file k$sig.btz
	expect_eq "" "$(leftovers "^\.k$sig\.btz\.")" "temporaries of k$sig.btz left after SIG$sig"
done
# The same for --from-tar=- and for --to-tar reading a slow piped archive;
# the temporary copy of a piped archive goes too.
if [ -n "$BSDTAR" ] && [ -x "$BSDTAR" ]; then
	( "$BSDTAR" -cf - dir; sleep 3 ) | "$BTZPACK" --from-tar=- -o kt.btz &
	pid=$!
	sleep 1
	kill -TERM $pid
	wait $pid || :
	no_file kt.btz
	expect_eq "" "$(leftovers '^\.kt\.btz\.')" "temporaries of kt.btz left after SIGTERM"
fi
mkdir tmpdir
( cat two.btz; sleep 3 ) | TMPDIR="$SCRATCH/tmpdir" "$BTZUNPACK" --to-tar=k.tar &
pid=$!
sleep 1
kill -TERM $pid
wait $pid || :
no_file k.tar
expect_eq "" "$(leftovers '^\.k\.tar\.')" "temporaries of k.tar left after SIGTERM"
expect_eq "" "$(ls -A tmpdir)" "files left in TMPDIR after SIGTERM"
# After a normal run no temporaries remain either.
expect_eq "" "$(leftovers '^\.[^.].*\.\(btz\|tar\)\.')" "temporaries left in the scratch directory"

finish
