#!/bin/sh
# A 4.5 GiB sparse file (holes, plus a few bytes near the start, just past
# 4 GiB and at the very end): the holes cost almost nothing in the archive
# (repeat method), sizes past 4 GiB survive, and extraction restores the
# same contents as a sparse file.
set -eu
. "$top_srcdir/tests/lib.sh"

SIZE=4831838208			# 4608 MiB
G4=4294967296

avail=$(df -Pk . | awk 'NR == 2 { print $4 }')
[ "$avail" -ge $((10 * 1024 * 1024)) ] ||
	skip "less than 10 GiB free in $SCRATCH ($avail KiB)"

truncate -s 4608M big
printf 'head of the file' | dd of=big bs=1 seek=1000 conv=notrunc status=none
printf 'just past 4 GiB' | dd of=big bs=1 seek=$((G4 + 1)) conv=notrunc status=none
printf 'the end' | dd of=big bs=1 seek=$((SIZE - 7)) conv=notrunc status=none
expect_eq $SIZE "$(stat -c %s big)" "size of the fixture"
used=$(du -k big | cut -f1)
[ "$used" -lt 10240 ] || skip "this file system does not keep big sparse ($used KiB used)"
sum=$(cksum <big)

# Pack with two threads; the archive is tiny.
expect_status 0 "$BTZPACK" -T 2 -o big.btz big
expect_no_err
asize=$(wc -c <big.btz)
[ "$asize" -lt 1048576 ] || fail "big.btz: expected < 1 MiB (holes coded as repeats), got $asize bytes"
# The thread count does not change the archive.
expect_status 0 "$BTZPACK" -T 1 -o big1.btz big
cmp big.btz big1.btz >&2 || fail "-T 1 and -T 2 archives of the sparse file differ"
rm -f big1.btz

expect_status 0 "$BTZUNPACK" -T 2 -t big.btz
"$BTZUNPACK" -l big.btz >list.out
line=$(awk 'NR > 1 && $NF == "big"' list.out)
[ -n "$line" ] || { cat list.out >&2; fail "-l big.btz: member big not listed"; }
expect_eq $SIZE "$(echo "$line" | awk '{ print $1 }')" "size of big in -l"
case $line in
*repeat*) ;;
*) fail "-l big.btz: expected the repeat method among the methods of big, got: $line" ;;
esac

# Extract: same size, same contents (cksum reads fast), and sparse.
mkdir out
expect_status 0 "$BTZUNPACK" -T 2 -C out big.btz
expect_eq $SIZE "$(stat -c %s out/big)" "size of the extracted file"
expect_eq "$sum" "$(cksum <out/big)" "cksum of the extracted file"
for off in 1000 $((G4 + 1)) $((SIZE - 7)); do
	a=$(dd if=big bs=1 skip=$off count=16 status=none | od -An -c)
	b=$(dd if=out/big bs=1 skip=$off count=16 status=none | od -An -c)
	expect_eq "$a" "$b" "16 bytes at offset $off of the extracted file"
done
used=$(du -k out/big | cut -f1)
[ "$used" -lt 65536 ] ||
	fail "out/big: expected a sparse file (< 64 MiB allocated of 4.5 GiB), got $used KiB allocated"
expect_eq "$(stat -c %Y big)" "$(stat -c %Y out/big)" "mtime of the extracted file"

# -c writes the same bytes.
expect_eq "$sum" "$("$BTZUNPACK" -T 2 -c big.btz | cksum)" "cksum of btzunpack -c big.btz"

exit 0
