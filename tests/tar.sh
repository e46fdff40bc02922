#!/bin/sh
# Interchange with tar: btzpack --from-tar imports tar (plain, gzip, xz),
# zip and cpio archives, from a file or stdin; btzunpack --to-tar exports a
# pax tar that bsdtar and GNU tar extract to the identical tree.
set -eu
. "$top_srcdir/tests/lib.sh"

[ -n "$BSDTAR" ] && [ -x "$BSDTAR" ] || skip "bsdtar not found (BSDTAR is empty)"

umask 022
T1='2001-02-03 04:05:06.123456789'
T2='2010-10-10 10:10:10.5'

# The fixture: nested dirs, modes, nanosecond mtimes, symlinks, hard links,
# an empty file and directory, a multi-chunk file, an odd name.
mkdir -p src/a/b src/empty src/sg
make_text 100000 src/a/text.txt
make_random 150000 src/a/b/random.bin 7
make_const 70000 '\000' src/zeros
printf 'x\n' >src/a/b/small
: >src/empty-file
printf 'secret\n' >src/private
chmod 0600 src/private
printf '#!/bin/sh\n' >src/script
chmod 0755 src/script
chmod 2775 src/sg
printf 'link me\n' >src/hard1
ln src/hard1 src/a/hard2
ln -s a/b/small src/rel-link
ln -s nowhere src/dangling
printf 'sp\n' >'src/name with space'
find src -depth ! -type l -exec touch -d "$T1" {} +
touch -d "$T2" src/a/text.txt src/a
touch -h -d "$T2" src/rel-link

# import NAME: --from-tar=NAME.ARCHIVE gives an archive that -t accepts and
# that extracts to the same tree as bsdtar extracting NAME.ARCHIVE (the
# reference: formats lose what they cannot hold, e.g. zip and cpio lose
# nanoseconds) and, with FULL=1, to the original tree itself.
import() {
	_in=$1 _full=$2
	expect_status 0 "$BTZPACK" -T 2 --chunk-size=64K --from-tar="$_in" -o "$_in.btz"
	expect_no_err
	expect_status 0 "$BTZUNPACK" -t "$_in.btz"
	mkdir "ref.$_in" "out.$_in"
	"$BSDTAR" -xpf "$_in" -C "ref.$_in" || fail "bsdtar -xf $_in exited $?"
	expect_status 0 "$BTZUNPACK" -C "out.$_in" "$_in.btz"
	# In a subshell: a difference is reported and the other formats are
	# still checked.
	(same_tree "ref.$_in" "out.$_in") ||
		soft_fail "--from-tar=$_in: extracted tree differs from bsdtar's extraction"
	if [ "$_full" = 1 ]; then
		(same_tree src "out.$_in/src") ||
			soft_fail "--from-tar=$_in: extracted tree differs from the original"
	fi
}

"$BSDTAR" --format pax -cf pax.tar src
import pax.tar 1
"$BSDTAR" --format pax -czf pax.tar.gz src
import pax.tar.gz 1
if "$BSDTAR" --format pax -cJf pax.tar.xz src 2>/dev/null; then
	import pax.tar.xz 1
else
	note "bsdtar cannot write xz: .tar.xz case skipped"
fi
"$BSDTAR" -cf default.tar src
import default.tar 0
"$BSDTAR" --format zip -cf src.zip src
import src.zip 0
"$BSDTAR" --format newc -cf src.cpio src
import src.cpio 0
# cpio keeps hard links (newc stores the data with the last name, and
# libarchive reports that name as a hard link that carries data); check that
# they came through as links, with their content.
i1=$(stat -c %i out.src.cpio/src/hard1)
i2=$(stat -c %i out.src.cpio/src/a/hard2)
expect_eq "$i1" "$i2" "inode of out.src.cpio/src/a/hard2 (a hard link of src/hard1)"
cmp src/hard1 out.src.cpio/src/hard1 >&2 ||
	soft_fail "--from-tar=src.cpio: hard-linked file src/hard1 lost its content ($(wc -c <out.src.cpio/src/hard1) bytes, expected $(wc -c <src/hard1))"

# From stdin, plain and compressed.
"$BSDTAR" --format pax -cf - src | "$BTZPACK" --chunk-size=64K --from-tar=- -o stdin.btz ||
	fail "btzpack --from-tar=- exited $?"
mkdir out.stdin
expect_status 0 "$BTZUNPACK" -C out.stdin stdin.btz
same_tree src out.stdin/src
"$BTZPACK" --from-tar=- -o stdin-gz.btz <pax.tar.gz || fail "btzpack --from-tar=- <pax.tar.gz exited $?"
mkdir out.stdin-gz
expect_status 0 "$BTZUNPACK" -C out.stdin-gz stdin-gz.btz
same_tree src out.stdin-gz/src
# Importing the tar or packing the tree gives the same members and data:
# the extracted trees agree (checked above), and the sizes too.
expect_status 0 "$BTZPACK" --chunk-size=64K -o direct.btz src
d=$("$BTZUNPACK" -l direct.btz | tail -n 1 | awk '{ print $1, $3 }')
p=$("$BTZUNPACK" -l pax.tar.btz | tail -n 1 | awk '{ print $1, $3 }')
expect_eq "$d" "$p" "total size and member count of direct.btz vs pax.tar.btz"

# A file that is not an archive is an error naming it.
make_random 1000 junk 3
expect_status 1 "$BTZPACK" --from-tar=junk -o junk.btz
expect_err junk
no_file junk.btz
# A path argument with --from-tar is a usage error.
expect_status 1 "$BTZPACK" --from-tar=pax.tar -o both.btz src
no_file both.btz

# Export: --to-tar, extracted by bsdtar and by GNU tar.
expect_status 0 "$BTZPACK" -T 2 --chunk-size=64K -o src.btz src
expect_status 0 "$BTZUNPACK" --to-tar=out.tar src.btz
expect_no_err
mkdir x.bsdtar
"$BSDTAR" -xpf out.tar -C x.bsdtar || fail "bsdtar -xf out.tar exited $?"
same_tree src x.bsdtar/src
# The pax header carries the nanoseconds.
grep -a -q 'mtime=981173106.123456789' out.tar ||
	fail "out.tar: no pax header 'mtime=981173106.123456789' for the nanosecond mtime"
if [ -n "$GNUTAR" ] && [ -x "$GNUTAR" ]; then
	mkdir x.gnutar
	# Members come in directory-scan order (as bsdtar writes them): GNU tar
	# needs --delay-directory-restore to keep directory mtimes when a
	# directory's entries are not contiguous.
	"$GNUTAR" --delay-directory-restore -xpf out.tar -C x.gnutar ||
		fail "GNU tar -xf out.tar exited $?"
	same_tree src x.gnutar/src
	"$GNUTAR" -tf out.tar >gnu.list || fail "GNU tar -tf out.tar exited $?"
else
	note "GNU tar not found: its checks skipped"
fi

# --to-tar=- into bsdtar -tvf - lists every member.
"$BTZUNPACK" --to-tar=- src.btz | "$BSDTAR" -tf - >bsd.list ||
	fail "btzunpack --to-tar=- | bsdtar -tf - failed"
(cd src/.. && find src) | sort >members.expected
sed 's|/$||' bsd.list | sort >members.actual
if ! cmp -s members.expected members.actual; then
	diff members.expected members.actual >&2 || :
	fail "members listed by bsdtar -tf differ from the packed tree"
fi
"$BTZUNPACK" --to-tar=- src.btz | "$BSDTAR" -tvf - >bsd.vlist ||
	fail "btzunpack --to-tar=- | bsdtar -tvf - failed"
expect_grep 'src/rel-link -> a/b/small' bsd.vlist
expect_grep 'src/a/hard2 link to src/hard1' bsd.vlist
expect_grep 'drwxrwsr-x' bsd.vlist
expect_eq "$(wc -l <members.expected)" "$(wc -l <bsd.vlist)" "lines of bsdtar -tvf"
# Piped archive in, tar out.
cat src.btz | "$BTZUNPACK" --to-tar=- | "$BSDTAR" -tf - >bsd2.list ||
	fail "cat src.btz | btzunpack --to-tar=- | bsdtar -tf - failed"
cmp bsd.list bsd2.list >&2 || fail "--to-tar from a piped archive lists differently"

# Selected members only.
expect_status 0 "$BTZUNPACK" --to-tar=part.tar src.btz src/a/b src/script
"$BSDTAR" -tf part.tar | sed 's|/$||' | sort >part.list
printf '%s\n' src/a/b src/a/b/random.bin src/a/b/small src/script | sort >part.expected
if ! cmp -s part.expected part.list; then
	diff part.expected part.list >&2 || :
	fail "--to-tar with members src/a/b src/script: wrong member set"
fi

# --to-tar refuses to overwrite an existing file without -f.
cp out.tar out.tar.orig
echo 'precious' >existing.tar
cp existing.tar existing.orig
expect_status 1 "$BTZUNPACK" --to-tar=existing.tar src.btz
expect_err existing.tar
same_file existing.orig existing.tar
expect_status 0 "$BTZUNPACK" -f --to-tar=existing.tar src.btz
same_file out.tar existing.tar
# The export is deterministic.
expect_status 0 "$BTZUNPACK" -f --to-tar=out.tar src.btz
same_file out.tar.orig out.tar
# No temporary files are left beside the outputs.
left=$(ls -A | grep '^\.' | grep -v '^\.stderr$\|^\.tree\.\|^\.links\.' || :)
expect_eq "" "$left" "hidden temporary files left in the scratch directory"

# A round trip through --to-tar and back through --from-tar.
expect_status 0 "$BTZPACK" --chunk-size=64K --from-tar=out.tar -o again.btz
mkdir out.again
expect_status 0 "$BTZUNPACK" -C out.again again.btz
same_tree src out.again/src

finish
