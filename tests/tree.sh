#!/bin/sh
# A directory tree with every kind of metadata btz records survives a round
# trip: nested directories, permission bits (setgid, sticky), mtimes with
# nanoseconds, symbolic links (relative, dangling), hard links, odd names,
# empty directories and files.  Absolute paths are stored relative.
set -eu
. "$top_srcdir/tests/lib.sh"

umask 022
NL='
'
T1='2001-02-03 04:05:06.123456789'
T2='1999-12-31 23:59:59.000000001'
T3='2020-06-07 08:09:10.987654321'

mkdir -p src/a/b/c src/empty-dir src/setgid src/sticky
printf 'hello\n' >src/a/b/c/deep.txt
make_text 5000 src/a/text.txt
make_random 70000 src/a/b/random.bin 5
: >src/empty-file
printf 'secret\n' >src/private
chmod 0600 src/private
printf '#!/bin/sh\necho hi\n' >src/script
chmod 0755 src/script
printf 'read only\n' >src/readonly
chmod 0444 src/readonly
printf 'x\n' >src/setgid/in-setgid
chmod 2775 src/setgid
printf 'y\n' >src/sticky/in-sticky
chmod 1777 src/sticky
chmod 0700 src/a/b

# Symbolic links: relative, to a directory, dangling, absolute.
ln -s b/c/deep.txt src/a/rel-link
ln -s a/b src/dir-link
ln -s does/not/exist src/dangling
ln -s /nonexistent/absolute/target src/abs-link

# Hard links: two names for one inode, in different directories, plus a
# third name; and a file with link count 2 where one name is outside the
# packed tree (only one name inside: extracted as a plain file).
printf 'linked content\n' >src/hard1
ln src/hard1 src/a/hard2
ln src/hard1 'src/hard 3'
printf 'outside\n' >src/half-linked
ln src/half-linked outside-name

# Odd names.
printf 1 >'src/with space'
printf 2 >"src/new${NL}line"
printf 3 >'src/-leading-dash'
printf 4 >'src/ütf8-名前-ñ'
printf 5 >'src/star*'
printf 6 >'src/question?'
printf 7 >'src/back\slash'
printf 8 >"src/quote'\"s"
long=$(printf '%0200d' 0 | tr 0 L)
printf 9 >"src/$long"
mkdir "src/dir with space"
printf 10 >"src/dir with space/$long"

# Times with nanoseconds, deepest first, directories last.
find src -depth ! -type l -exec touch -d "$T1" {} +
touch -d "$T2" src/a/text.txt src/hard1
touch -d "$T3" src/setgid src/empty-dir
touch -h -d "$T3" src/a/rel-link src/dangling
touch -d '1970-01-01 00:00:00' src/private

# Sanity of the fixture itself (GNU find prints nanoseconds).
expect_eq '981173106.1234567890' "$(find src/script -printf '%T@')" \
	"fixture mtime of src/script"

for t in 1 2; do
	expect_status 0 "$BTZPACK" -T $t --chunk-size=64K -o tree$t.btz src
	expect_no_err
	expect_status 0 "$BTZUNPACK" -t tree$t.btz
	mkdir out$t
	expect_status 0 "$BTZUNPACK" -T $t -C out$t tree$t.btz
	same_tree src out$t/src
done
cmp tree1.btz tree2.btz >&2 || fail "-T 1 and -T 2 archives of the tree differ"

# Hard links are restored as hard links: one inode for the three names.
i1=$(stat -c %i out1/src/hard1)
i2=$(stat -c %i out1/src/a/hard2)
i3=$(stat -c %i 'out1/src/hard 3')
[ "$i1" = "$i2" ] && [ "$i1" = "$i3" ] ||
	fail "hard links: expected one inode, got $i1 $i2 $i3"
expect_eq 3 "$(stat -c %h out1/src/hard1)" "link count of out1/src/hard1"
expect_eq 1 "$(stat -c %h out1/src/half-linked)" "link count of out1/src/half-linked"
# The special bits made it.
expect_eq 2775 "$(stat -c %a out1/src/setgid)" "mode of the setgid directory"
expect_eq 1777 "$(stat -c %a out1/src/sticky)" "mode of the sticky directory"
expect_eq "$T1" "$(stat -c %y out1/src/script | cut -c1-29)" "mtime of out1/src/script"
expect_eq does/not/exist "$(readlink out1/src/dangling)" "target of the dangling link"
expect_eq "$long" "$(cd out1/src && ls -d L*)" "200-byte name"

# The listing names every member, once.
"$BTZUNPACK" -l tree1.btz >list.out
for n in src/a/b/c/deep.txt 'src/ütf8-名前-ñ' 'src/star*' 'src/back\slash' \
	src/empty-dir src/dangling src/a/hard2; do
	expect_grep " $n" list.out
done
nmembers=$(find src | wc -l)
# The name with a newline takes two lines of find output.
nmembers=$((nmembers - 1))
expect_grep "$nmembers members" list.out

# Extracting one directory member extracts everything under it only.
mkdir part
expect_status 0 "$BTZUNPACK" -C part tree1.btz src/a/b
[ -f part/src/a/b/c/deep.txt ] || fail "member src/a/b: part/src/a/b/c/deep.txt not extracted"
[ -f part/src/a/b/random.bin ] || fail "member src/a/b: part/src/a/b/random.bin not extracted"
no_file part/src/a/text.txt part/src/script
same_file src/a/b/random.bin part/src/a/b/random.bin

# An absolute path argument: names are stored relative, with a warning.
abs="$SCRATCH/src"
status_of "$BTZPACK" -o abs.btz "$abs"
expect_err "leading '/'"
# btzpack(1): exit 2 means "something was skipped"; nothing is skipped here
# (GNU tar and bsdtar exit 0 after this warning too).
[ "$ST" -eq 0 ] || soft_fail "btzpack -o abs.btz $abs (only a leading '/' removed): expected exit 0, got $ST"
"$BTZUNPACK" -l abs.btz >abs.list
awk 'NR > 1 && $6 ~ /^\// { bad = 1 } END { exit bad }' abs.list ||
	fail "abs.btz: absolute member names stored: $(grep ' /' abs.list | head -3)"
rel=${abs#/}
expect_grep " $rel/script" abs.list
mkdir absout
expect_status 0 "$BTZUNPACK" -C absout abs.btz
same_tree src "absout/$rel"
# -q silences the warning.
status_of "$BTZPACK" -q -o abs2.btz "$abs"
expect_no_err
[ "$ST" -eq 0 ] || soft_fail "btzpack -q -o abs2.btz $abs: expected exit 0, got $ST"

# A leading ../ is removed too.
mkdir sub
ST=0
(cd sub && "$BTZPACK" -q -o ../dotdot.btz ../src/a/b/c) || ST=$?
[ "$ST" -eq 0 ] || soft_fail "btzpack -q -o ../dotdot.btz ../src/a/b/c: expected exit 0, got $ST"
[ -f dotdot.btz ] || fail "btzpack ../src/a/b/c wrote no archive"
"$BTZUNPACK" -l dotdot.btz >dotdot.list
expect_grep " src/a/b/c/deep.txt" dotdot.list
if grep -q '\.\./' dotdot.list; then
	fail "dotdot.btz: a member keeps '../': $(grep '\.\./' dotdot.list)"
fi

# Extraction into the current directory (no -C).
mkdir here
(cd here && "$BTZUNPACK" ../tree1.btz) || fail "btzunpack without -C exited $?"
same_tree src here/src

finish
