#!/bin/sh
# Round trips of file contents through btzpack and btzunpack: edge sizes
# around the chunk size, random, text and constant data, many small files
# sharing chunks, -c, pipes, thread-count independence, -t and -l.
set -eu
. "$top_srcdir/tests/lib.sh"

CS=65536	# --chunk-size=64K forces many chunks on small inputs

# list_field ARCHIVE NAME FIELD: field FIELD (1 size, 4 modality, 5 method)
# of member NAME in `btzunpack -l ARCHIVE`.
list_field() {
	"$BTZUNPACK" -l "$1" | awk -v n="$2" -v f="$3" '
		NR > 1 && $NF == n && NF == 6 { print $f; found = 1 }
		END { if (!found) print "(member " n " not listed)" }'
}

mkdir in
make_const 0 x in/empty
make_const 1 x in/one
make_random $((CS - 1)) in/cs-minus-1 1
make_random $CS in/cs 2
make_random $((CS + 1)) in/cs-plus-1 3
make_random 200000 in/random 4
make_text 300000 in/text
make_const 200000 '\000' in/zeros
make_const 150000 'A' in/letters

# Each file on its own, alternating 1 and 2 threads: pack, test, extract
# with -C, compare; then -c to stdout.
t=1
for f in empty one cs-minus-1 cs cs-plus-1 random text zeros letters; do
	expect_status 0 "$BTZPACK" -T $t --chunk-size=64K -o $f.btz in/$f
	expect_no_err
	expect_status 0 "$BTZUNPACK" -t $f.btz
	mkdir out.$f
	expect_status 0 "$BTZUNPACK" -T $t -C out.$f $f.btz
	same_file in/$f out.$f/in/$f
	expect_status 0 "$BTZUNPACK" -T $t -c $f.btz >c.$f
	same_file in/$f c.$f
	expect_status 0 "$BTZUNPACK" -c $f.btz in/$f >c2.$f
	same_file in/$f c2.$f
	expect_eq "$(wc -c <in/$f | tr -d ' ')" "$(list_field $f.btz in/$f 1)" \
		"size of in/$f in -l"
	t=$((3 - t))
done

# Modalities and methods shown by -l.
expect_eq text "$(list_field text.btz in/text 4)" "modality of a text file"
expect_eq other "$(list_field random.btz in/random 4)" "modality of random data"
expect_eq stored "$(list_field random.btz in/random 5)" "method of random data"
expect_eq repeat "$(list_field zeros.btz in/zeros 5)" "method of a run of zeros"
expect_eq repeat "$(list_field letters.btz in/letters 5)" "method of a run of 'A'"
case $(list_field text.btz in/text 5) in
*lzma2*) ;;
*) fail "method of text: expected lzma2, got '$(list_field text.btz in/text 5)'" ;;
esac
# Runs of one byte cost almost nothing.
sz=$(wc -c <zeros.btz)
[ "$sz" -lt 1000 ] || fail "zeros.btz: expected < 1000 bytes (repeat), got $sz"
sz=$(wc -c <text.btz)
[ "$sz" -lt 150000 ] || fail "text.btz: expected < 150000 bytes, got $sz"

# Everything in one archive, plus many small files sharing solid chunks.
mkdir in/small
i=0
while [ $i -lt 300 ]; do
	make_text $((100 + i * 7)) in/small/f$i.txt
	i=$((i + 1))
done
make_random 3000 in/small/r.bin 9
expect_status 0 "$BTZPACK" -T 2 --chunk-size=64K -o all.btz in
expect_status 0 "$BTZUNPACK" -t all.btz
mkdir out.all
expect_status 0 "$BTZUNPACK" -T 2 -C out.all all.btz
same_tree in out.all/in
# The small files (about 400 KB) share a handful of chunks: the listing shows
# 302 small members but the archive holds far fewer chunks than files.
n=$("$BTZUNPACK" -l all.btz | grep -c ' in/small/')
expect_eq 301 "$n" "small files listed in all.btz"
# One member out of the middle of a shared chunk.
expect_status 0 "$BTZUNPACK" -c all.btz in/small/f150.txt >c.f150
same_file in/small/f150.txt c.f150
# Two members, in archive order.
expect_status 0 "$BTZUNPACK" -c all.btz in/one in/cs >c.two
cat in/one in/cs >two.expected
same_file two.expected c.two

# stdin -> stdout: a pipe of unknown length spanning many chunks.
mkdir tmpdir
export TMPDIR="$SCRATCH/tmpdir"
cat in/text in/random in/zeros >big
cat big | "$BTZPACK" -T 2 --chunk-size=64K >pipe.btz ||
	fail "btzpack from a pipe to stdout exited $?"
expect_status 0 "$BTZUNPACK" -t pipe.btz
expect_eq stdin "$("$BTZUNPACK" -l pipe.btz | awk 'NR == 2 { print $NF }')" \
	"member name of a piped input"
expect_eq "$(wc -c <big | tr -d ' ')" "$(list_field pipe.btz stdin 1)" \
	"size of the piped member"
# ... and back through a pipe into btzunpack (non-seekable archive).
cat big | "$BTZPACK" --chunk-size=64K | "$BTZUNPACK" -c >pipe.out ||
	fail "btzpack | btzunpack -c exited $?"
same_file big pipe.out
cat pipe.btz | "$BTZUNPACK" -c - >pipe2.out || fail "btzunpack -c - from a pipe exited $?"
same_file big pipe2.out
# The temporary copy of a piped archive is removed.
left=$(ls -A tmpdir)
expect_eq "" "$left" "files left in TMPDIR after reading a piped archive"
# Redirected stdin (seekable) and stdout.
"$BTZPACK" --chunk-size=64K <in/text >redir.btz || fail "btzpack <file >file exited $?"
"$BTZUNPACK" -c <redir.btz >redir.out || fail "btzunpack -c <file exited $?"
same_file in/text redir.out
# An empty pipe.
: | "$BTZPACK" >emptypipe.btz || fail "btzpack on an empty pipe exited $?"
"$BTZUNPACK" -c emptypipe.btz >emptypipe.out || fail "btzunpack -c emptypipe.btz exited $?"
same_file in/empty emptypipe.out
# -o - writes to stdout.
expect_status 0 "$BTZPACK" --chunk-size=64K -o - in/text >dash.btz
expect_status 0 "$BTZUNPACK" -c dash.btz >dash.out
same_file in/text dash.out

# The archive is byte-identical whatever the number of threads.
for t in 1 2 0; do
	expect_status 0 "$BTZPACK" -T $t --chunk-size=64K -o t$t.btz in
done
cmp t1.btz t2.btz >&2 || fail "-T 1 and -T 2 archives differ"
cmp t1.btz t0.btz >&2 || fail "-T 1 and -T 0 archives differ"
# (Archives of a pipe are not compared: the member's mtime is the time of
# packing.)  Redirected from a file, stdin keeps the file's metadata or not,
# but the same command twice with different thread counts must agree on the
# chunks: compare everything before the index.
"$BTZPACK" -T 1 --chunk-size=64K <big >p1.btz
"$BTZPACK" -T 2 --chunk-size=64K <big >p2.btz
head -c 260000 p1.btz >p1.head
head -c 260000 p2.btz >p2.head
cmp p1.head p2.head >&2 || fail "-T 1 and -T 2 archives of stdin differ in their chunks"

# -t on every archive made above succeeds and prints nothing to stdout.
for a in *.btz; do
	expect_status 0 "$BTZUNPACK" -t "$a" >t.out
	[ ! -s t.out ] || fail "btzunpack -t $a wrote to stdout: $(head -c 200 t.out)"
done

# Other chunk sizes and presets still round-trip.
for opt in --chunk-size=1M -0 -e; do
	expect_status 0 "$BTZPACK" $opt -o opt.btz in/text
	expect_status 0 "$BTZUNPACK" -c opt.btz >opt.out
	same_file in/text opt.out
	rm -f opt.btz
done

# The gutenberg validation text, when the shared data is present.
GUT="$top_srcdir/../shared/data/text/gutenberg-valid.txt.xz"
if [ -f "$GUT" ] && command -v xz >/dev/null 2>&1; then
	xz -dc "$GUT" | head -c 1000000 >gut.txt
	expect_status 0 "$BTZPACK" -T 2 --chunk-size=256K -o gut.btz gut.txt
	expect_status 0 "$BTZUNPACK" -c gut.btz >gut.out
	same_file gut.txt gut.out
	expect_eq text "$(list_field gut.btz gut.txt 4)" "modality of gutenberg text"
else
	note "gutenberg text not present: that case skipped"
fi

exit 0
