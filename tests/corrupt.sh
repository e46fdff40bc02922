#!/bin/sh
# Damaged archives: every truncation and every single-byte change of a
# multi-chunk archive fails with exit 1 and a message naming the archive;
# nothing crashes, and extraction never leaves a file with wrong contents.
set -eu
. "$top_srcdir/tests/lib.sh"

mkdir src src/d
# Repetitive text keeps the archive small (every byte is tried) while
# still spanning three chunks.
make_text 2000 unit
for i in $(seq 80); do cat unit; done > src/d/text
make_random 500 src/d/rand 7
printf 'tiny\n' > src/d/tiny
ln -s text src/d/link
expect_status 0 "$BTZPACK" -q --chunk-size=64K -o a.btz src
size=$(wc -c < a.btz)
note "archive of $size bytes"
[ "$size" -lt 6000 ] || fail "archive unexpectedly large: $size bytes"

# Exit status 1 with the archive named; >1 would be a crash or a signal.
bad() { # ARCHIVE WHAT
	st=0
	"$BTZUNPACK" -t "$1" > /dev/null 2> err || st=$?
	[ "$st" -eq 1 ] || { cat err >&2; fail "$2: -t exit $st, expected 1"; }
	grep -q "$1" err || { cat err >&2; fail "$2: message lacks $1"; }
}

# Offsets worth every byte: the header, and the index and footer at the
# end; in the chunk payloads between, every fifth byte.
tail_start=$((size - 300))
dense() { [ "$1" -lt 64 ] || [ "$1" -ge "$tail_start" ] || [ $(($1 % 5)) -eq 0 ]; }

n=0
while [ "$n" -lt "$size" ]; do
	if dense "$n"; then
		head -c "$n" a.btz > cut.btz
		bad cut.btz "truncated to $n bytes"
	fi
	n=$((n + 1))
done
# Extra bytes after the footer are damage too.
{ cat a.btz; printf x; } > long.btz
bad long.btz "one byte appended"

# Bytes changed (xor 0x01; xor 0x80 at every third), for -t; extraction
# for a sample.
xor_at() { # OFFSET VALUE: writes flip.btz
	cp a.btz flip.btz
	b=$(od -An -tu1 -j "$1" -N1 a.btz | tr -d ' ')
	printf "\\$(printf %o $((b ^ $2)))" |
		dd of=flip.btz bs=1 seek="$1" conv=notrunc 2>/dev/null
}
off=0
while [ "$off" -lt "$size" ]; do
	if ! dense "$off"; then
		off=$((off + 1))
		continue
	fi
	for v in 1 128; do
		[ "$v" -eq 1 ] || [ $((off % 3)) -eq 0 ] || continue
		xor_at "$off" "$v"
		bad flip.btz "byte $off xor $v"
	done
	if [ $((off % 97)) -eq 0 ]; then
		rm -rf x && mkdir x
		st=0
		"$BTZUNPACK" -q -C x flip.btz 2> err || st=$?
		[ "$st" -eq 1 ] || fail "byte $off: extraction exit $st"
		# Whatever was written must be intact: no partial files.
		for f in text rand tiny; do
			if [ -e "x/src/d/$f" ]; then
				cmp -s "x/src/d/$f" "src/d/$f" ||
					fail "byte $off: x/src/d/$f written wrong"
			fi
		done
	fi
	off=$((off + 1))
done
