#!/bin/sh
# make bench: ratio and speed of btzpack/btzunpack (no model: scripts/results
# measures the models) beside xz -9 and
# zstd -19 on the validation text. Timings are wall-clock medians of
# BENCH_RUNS runs (default 3) on this machine; say which machine.
set -eu
: "${BTZPACK:?}" "${BTZUNPACK:?}"
runs=${BENCH_RUNS:-3}
src=${BENCH_INPUT:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
	top=$(cd "$(dirname "$0")/.." && pwd)
	xzsrc="$top/../shared/data/text/gutenberg-valid.txt.xz"
	[ -f "$xzsrc" ] || { echo "bench: $xzsrc not found" >&2; exit 1; }
	xz -dc "$xzsrc" > "$work/input"
	name="gutenberg-valid.txt"
else
	cp "$src" "$work/input"
	name=$(basename "$src")
fi
size=$(wc -c < "$work/input")

# median_time SHELL-COMMAND: prints the median wall time in seconds.
median_time() {
	i=0
	: > "$work/times"
	while [ "$i" -lt "$runs" ]; do
		s=$(date +%s.%N)
		sh -c "$1"
		e=$(date +%s.%N)
		awk -v e="$e" -v s="$s" 'BEGIN { print e - s }' >> "$work/times"
		i=$((i + 1))
	done
	sort -g "$work/times" | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

row() { # NAME PACKED PACK_S UNPACK_S
	awk -v n="$1" -v c="$2" -v p="$3" -v u="$4" -v s="$size" 'BEGIN {
		printf "%-22s %12d %7.4f %9.2f %9.2f\n", n, c, c / s,
			s / p / 1e6, s / u / 1e6 }'
}

echo "bench: $name, $size bytes, $(nproc) cores, $(uname -m), median of $runs"
printf "%-22s %12s %7s %9s %9s\n" method bytes ratio "pack MB/s" "unpk MB/s"
cd "$work"
export BTZPACK BTZUNPACK
p=$(median_time '"$BTZPACK" -q -f --no-default-models -o input.btz input')
u=$(median_time '"$BTZUNPACK" -q -c input.btz > out')
cmp -s input out || { echo "bench: btz round trip differs" >&2; exit 1; }
row "btz (lzma2 fallback)" "$(wc -c < input.btz)" "$p" "$u"
p=$(median_time '"$BTZPACK" -q -f --no-default-models -T 1 -o input1.btz input')
u=$(median_time '"$BTZUNPACK" -q -T 1 -c input1.btz > out')
row "btz -T 1" "$(wc -c < input1.btz)" "$p" "$u"
if command -v xz >/dev/null; then
	p=$(median_time 'xz -9 -T1 -c input > input.xz')
	u=$(median_time 'xz -dc input.xz > out')
	row "xz -9" "$(wc -c < input.xz)" "$p" "$u"
	p=$(median_time 'xz -9 -T0 -c input > input.xzt')
	u=$(median_time 'xz -dc input.xzt > out')
	row "xz -9 -T0" "$(wc -c < input.xzt)" "$p" "$u"
fi
if command -v zstd >/dev/null; then
	p=$(median_time 'zstd -q -19 -T0 -c input > input.zst')
	u=$(median_time 'zstd -q -dc input.zst > out')
	row "zstd -19" "$(wc -c < input.zst)" "$p" "$u"
fi
