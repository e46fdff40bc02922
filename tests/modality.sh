#!/bin/sh
# Modality routing in btzpack: the headers of PNM, BMP and WAV files go to
# chunks of their own coded by the fallback methods, their pixels or
# samples to chunks of the image or audio model; hostile headers fall back
# to other; --modality forces a modality; btzunpack -l shows the modality
# and the model, and -l -v -v every chunk.
set -eu
. "$top_srcdir/tests/lib.sh"
MKMODEL="$top_builddir/tests/mkmodel"
MKSAMPLE="$top_builddir/tests/mksample"
MKARCHIVE="$top_builddir/tests/mkarchive"

# bmp FILE WIDTH HEIGHT PIXELS_AT: a 24-bit BI_RGB header, junk up to
# PIXELS_AT, then pixels drawn from the image model (rows padded to 4).
bmp() {
	_row=$((($2 * 3 + 3) / 4 * 4))
	_h=$3
	[ "$_h" -ge 0 ] || _h=$((-_h))
	{
		printf BM
		le $(($4 + _row * _h)) 4
		le 0 4
		le "$4" 4
		le 40 4
		le "$2" 4
		le $(($3 & 0xffffffff)) 4
		le 1 2
		le 24 2
		le 0 4
		le $((_row * _h)) 4
		le 0 16
		head -c $(($4 - 54)) /dev/zero | tr '\000' 'g'
		"$MKSAMPLE" models/img.btm $((_row * _h)) 7
	} >"$1"
}

# wav FILE DATA_BYTES [FMT_TAG BITS CHANNELS [SUM]]: RIFF/WAVE (mono
# unless CHANNELS): an odd "junk" chunk, "fmt ", "data" with DATA_BYTES
# drawn from the audio model (padded if odd; 16-bit channels each drawn on
# its own, or with SUM, two channels a, b as a, a + b), and an odd LIST
# chunk after it.
wav() {
	{
		printf RIFF
		le 0 4
		printf WAVEjunk
		le 3 4
		printf 'abc\000fmt '
		le 16 4
		le "${3:-1}" 2
		le "${5:-1}" 2
		le 8000 4
		le $((8000 * ${5:-1} * ${4:-16} / 8)) 4
		le $((${5:-1} * ${4:-16} / 8)) 2
		le "${4:-16}" 2
		printf data
		le "$2" 4
		if [ "${5:-1}" -gt 1 ] && [ "${4:-16}" -eq 16 ] &&
			[ $(($2 % (2 * $5))) -eq 0 ]; then
			if [ -n "${6:-}" ]; then
				"$MKSAMPLE" models/snd.btm "$2" 9 0 2 |
					perl -e 'local $/; my @s = unpack("v*", <STDIN>);
						print pack("v*", map { $_ % 2 ? ($s[$_ - 1] + $s[$_]) & 0xffff
							: $s[$_] } 0 .. $#s)'
			else
				"$MKSAMPLE" models/snd.btm "$2" 9 0 "$5"
			fi
		else
			"$MKSAMPLE" models/snd.btm "$2" 9
		fi
		[ $(($2 % 2)) -eq 0 ] || printf '\000'
		printf LIST
		le 13 4
		printf 'INFOISFT\005\000\000\000btz\000'
	} >"$1"
}

# check_routing FILE MODALITY OFF LEN MODEL: FILE.btz (packed from FILE)
# lists FILE as MODALITY, with chunks cut exactly at OFF and OFF + LEN,
# the bytes outside to non-model methods, the payload to MODEL (or, for
# "*", to any method), and FILE comes back byte-exact.
check_routing() {
	_size=$(wc -c <"$1")
	"$BTZUNPACK" -l "$1.btz" >"$1.list"
	expect_eq "$2" "$(awk 'NR == 2 { print $4 }' "$1.list")" \
		"modality of $1 in -l"
	"$BTZUNPACK" -l -v -v "$1.btz" >"$1.chunks"
	awk -v off="$3" -v end=$(($3 + $4)) -v size="$_size" -v model="$5" '
		function bad(why) { print why ": " $0; err = 1; exit 1 }
		$1 == "chunk" {
			split(substr($3, 2), r, /[,)]/)
			lo = r[1] + 0; hi = r[2] + 0
			if (lo != at) bad("chunks not contiguous at " at)
			at = hi
			if (hi <= off || lo >= end) {
				if ($7 == model) bad("header or trailer coded by the model")
			} else if (lo >= off && hi <= end) {
				if (model != "*" && $7 != model) bad("payload not coded by " model)
				payload = 1
			} else
				bad("chunk across a payload boundary [" off "," end ")")
		}
		END {
			if (err) exit 1
			if (at != size) { print "chunks end at " at ", not " size; exit 1 }
			if (end > off && !payload) { print "no payload chunk"; exit 1 }
		}' "$1.chunks" || { cat "$1.chunks" >&2; fail "$1: wrong chunks"; }
	rm -rf x && mkdir x
	expect_status 0 "$BTZUNPACK" --model=models -C x "$1.btz"
	same_file "$1" "x/$1"
}

# pack FILE [OPTION]...: FILE -> FILE.btz (replaced) with both models.
pack() {
	_f=$1
	shift
	expect_status 0 "$BTZPACK" -q -f --model=models/img.btm \
		--model=models/snd.btm "$@" -o "$_f.btz" "$_f"
}

# Generated models for images (context 66: whole pixels) and audio
# (context 64): data drawn from one is predicted by it better than LZMA2 or
# storing can.
mkdir models
"$MKMODEL" models/img.btm 21 32 1 8 2 128 66 2 >/dev/null || fail "mkmodel failed"
"$MKMODEL" models/snd.btm 22 32 1 8 2 128 64 3 >/dev/null || fail "mkmodel failed"

# --- images and audio: headers apart, payload to the model ------------------
{ printf 'P5\n# gray\n64 40\n255\n'; "$MKSAMPLE" models/img.btm 2560 5; } >gray.pgm
pack gray.pgm
check_routing gray.pgm image 20 2560 random-21
{ printf 'P6 40\n30\t255\r'; "$MKSAMPLE" models/img.btm 3600 6; } >rgb.ppm
pack rgb.ppm
check_routing rgb.ppm image 13 3600 random-21
# 21 pixels a row: 63 bytes, padded to 64; bottom-up, then top-down with
# a gap between the headers and the pixels.
bmp bottom.bmp 21 30 54
pack bottom.bmp
check_routing bottom.bmp image 54 1920 random-21
bmp topdown.bmp 21 -30 70
pack topdown.bmp
check_routing topdown.bmp image 70 1920 random-21
# Odd data (padded) and a LIST chunk after it: the trailer.
wav sound.wav 5001
pack sound.wav
check_routing sound.wav audio 56 5001 random-22
# Stereo samples: each channel to the audio model on its own (planes), in
# chunks of 64 windows a channel (8192 bytes of frames), the last short.
wav stereo.wav 40000 1 16 2
pack stereo.wav
check_routing stereo.wav audio 56 40000 random-22
expect_eq 7 "$(grep -c '^  chunk' stereo.wav.chunks)" "chunks of stereo.wav"
# The channels of stereo.wav as a, a + b: the second is coded as its
# difference from the first, b, so the archive is stereo.wav's, give or
# take the listing's bytes.
wav sum.wav 40000 1 16 2 sum
pack sum.wav
check_routing sum.wav audio 56 40000 random-22
_d=$(($(wc -c <sum.wav.btz) - $(wc -c <stereo.wav.btz)))
[ "${_d#-}" -le 16 ] ||
	fail "sum.wav: $(wc -c <sum.wav.btz) bytes, stereo.wav $(wc -c <stereo.wav.btz)"
# Three channels; a last frame cut short (then not whole frames: that
# chunk goes to the other methods).
wav three.wav 30000 1 16 3
pack three.wav
check_routing three.wav audio 56 30000 random-22
{ head -c 52 stereo.wav; le 40002 4; tail -c +57 stereo.wav | head -c 40000
  printf zz; tail -c 24 stereo.wav; } >ragged.wav
pack ragged.wav
check_routing ragged.wav audio 56 40002 '*'
expect_eq "random-22 random-22" \
	"$(awk '$1 == "chunk" { print $7 }' ragged.wav.chunks | sed -n '2p;5p' | xargs)" \
	"methods of ragged.wav's first and fourth payload chunks"
_m=$(awk '$1 == "chunk" { print $7 }' ragged.wav.chunks | sed -n 6p)
[ "$_m" != random-22 ] || fail "ragged.wav: the model coded a chunk of partial frames"
# The planes payload: chunk 1's block starts at 91, after the header and
# the 56-byte header chunk (stored); method 0x40 (planes of model 0), two
# 2-byte sizes, then the channel count, 2. A count that does not make
# whole frames, or out of range, is refused as corrupt, naming the chunk,
# and extraction leaves no file.
expect_eq "40 02" "$(od -An -tx1 -j91 -N6 stereo.wav.btz | awk '{ print $1, $6 }')" \
	"method and channels of stereo.wav's chunk 1"
cp stereo.wav.btz three.btz
printf '\003' | dd of=three.btz bs=1 seek=96 conv=notrunc 2>/dev/null
expect_status 1 "$BTZUNPACK" --model=models -t three.btz
expect_err 'chunk 1: planes: 3 channels of 16-bit samples in 8192 bytes'
printf '\021' | dd of=stereo.wav.btz bs=1 seek=96 conv=notrunc 2>/dev/null
rm -rf x && mkdir x
expect_status 1 "$BTZUNPACK" --model=models -C x stereo.wav.btz
expect_err 'chunk 1: planes: 17 channels'
no_file x/stereo.wav
# -l -v: the model column (after the method), "-" without a model.
"$BTZUNPACK" -l -v sound.wav.btz >long
awk '$NF == "sound.wav" && $8 == "audio" && $10 == "random-22" { ok = 1 }
	END { exit !ok }' long || { cat long >&2; fail "want audio, model random-22"; }

# Without models the same cuts, and no model listed.
cp sound.wav bare.wav
expect_status 0 "$BTZPACK" -q -o bare.wav.btz bare.wav
check_routing bare.wav audio 56 5001 '*'
"$BTZUNPACK" -l -v bare.wav.btz >bare.list
awk '$NF == "bare.wav" && $8 == "audio" && $10 == "-" { ok = 1 }
	END { exit !ok }' bare.list || { cat bare.list >&2; fail "bare.wav: want audio, model -"; }

# Several members, from a directory, a pipe and a tar: the same routing.
mkdir dir
cp gray.pgm sound.wav dir/
make_text 3000 dir/notes.txt
expect_status 0 "$BTZPACK" -q --model=models/img.btm --model=models/snd.btm \
	-o dir.btz dir
"$BTZUNPACK" -l dir.btz >dir.list
for f in gray.pgm:image notes.txt:text sound.wav:audio; do
	awk -v n="dir/${f%:*}" -v m="${f#*:}" '$NF == n && $4 == m { ok = 1 }
		END { exit !ok }' dir.list || { cat dir.list >&2; fail "dir/${f%:*}: want ${f#*:}"; }
done
rm -rf x && mkdir x
expect_status 0 "$BTZUNPACK" --model=models -C x dir.btz
same_tree dir x/dir
cat sound.wav | "$BTZPACK" -q --model=models/snd.btm >pipe.btz ||
	fail "btzpack from a pipe failed"
cp sound.wav stdin
cp pipe.btz stdin.btz
check_routing stdin audio 56 5001 random-22
if command -v tar >/dev/null 2>&1; then
	tar cf media.tar gray.pgm topdown.bmp
	expect_status 0 "$BTZPACK" -q --model=models/img.btm \
		--from-tar=media.tar -o media.btz
	"$BTZUNPACK" -l -v -v media.btz >media.list
	expect_eq 2 "$(grep -c ' image  .* random-21 ' media.list)" \
		"image members of media.btz"
	expect_grep "[0,70) 70 -> " media.list
else
	note "tar missing: --from-tar skipped"
fi

# chunk_ends LIST: where each chunk of a `btzunpack -l -v -v` listing ends.
chunk_ends() {
	awk '$1 == "chunk" { split(substr($3, 2), r, /[,)]/)
		printf "%s%s", s, r[2]; s = " " }' "$1"
}

# --- layout transforms -------------------------------------------------------
# A model that sees samples high byte first (swap16), samples as their
# prediction residual (lms, lmsz, lpcz) or pixels as G, R-G, B-G (green) wins
# only if btzpack hands it its own layout: mksample draws in the model's
# layout and writes the file's; check_routing unpacks.
# layout NAME SEED CONTEXT MODALITY TRANSFORM BYTES: a model of that
# layout codes a raw payload of BYTES drawn from it.
layout() {
	case $4 in 2) _mod=image ;; *) _mod=audio ;; esac
	"$MKMODEL" "models/$1.btm" "$2" 32 1 8 2 128 "$3" "$4" "$5" >/dev/null ||
		fail "mkmodel $1 failed"
	"$MKSAMPLE" "models/$1.btm" "$6" "$2" >"$1.raw"
	expect_status 0 "$BTZPACK" -q --model="models/$1.btm" \
		--modality=$_mod -o "$1.raw.btz" "$1.raw"
	check_routing "$1.raw" $_mod 0 "$6" "random-$2"
}
layout swap 23 64 3 1 6001
layout green 24 66 2 2 5000
# lms carries state from sample to sample: 40000-byte payloads are cut
# into several chunks, each restarting it.
layout lms 26 64 3 3 40000
layout lmsz 27 64 3 4 40000
layout lpcz 33 64 3 7 40000
# lpcz's chunks hold 128 windows (its predictors adapt for a while after
# each restart): 40,000 bytes in 64-byte windows are 5 chunks, not 10.
expect_eq "8192 16384 24576 32768 40000" "$(chunk_ends lpcz.raw.chunks)" \
	"chunk ends of lpcz.raw"
layout med 28 66 2 5 9000
# med predicts from the row above: btzpack takes a PPM's width from its
# header and gives each chunk its rows (64 windows of 66 bytes: 1,408
# pixels, so the second and third chunks start 8 and 16 pixels into a
# row of 40). The same pixels under a header that says 20 a row are
# coded with the wrong rows: the model then loses even to storing.
{ printf 'P6 40 100 255\n'; "$MKSAMPLE" models/med.btm 12000 29 40; } >med.ppm
for f in med med20; do
	[ $f = med ] || { printf 'P6 20 200 255\n'; tail -c 12000 med.ppm; } >$f.ppm
	expect_status 0 "$BTZPACK" -q --model=models/med.btm -o $f.ppm.btz $f.ppm
done
check_routing med.ppm image 14 12000 random-28
check_routing med20.ppm image 14 12000 '*'
expect_eq 0 "$(grep -c random-28 med20.ppm.chunks)" "model chunks of med20.ppm"
# The rows lead the model's payload: chunk 1's block starts at 49, after
# the header and the 14-byte header chunk (stored), and its payload, after
# the method and two 2-byte sizes, with width 40 (0x28) and column 0. A
# column past the width is refused as corrupt, naming the chunk.
expect_eq "28 00" "$(od -An -tx1 -j54 -N2 med.ppm.btz | tr -s ' ' | sed 's/^ //')" \
	"rows of chunk 1"
printf '\060' | dd of=med.ppm.btz bs=1 seek=55 conv=notrunc 2>/dev/null
expect_status 1 "$BTZUNPACK" --model=models -t med.ppm.btz
expect_err 'chunk 1: model chunk: bad rows'
# medt (med in tiles): btzpack cuts the pixels into chunks of whole bands
# of 16 rows (64 windows of 66 bytes hold 35 rows of 40 pixels: two bands,
# 3,840 bytes), so each starts a row; the 4 rows left form the last. The
# model wins them only in its own layout, which mksample draws: the same
# pixels 20 a row are not. mixt (medt with blended predictions) is cut
# the same way.
# tiled NAME SEED TRANSFORM: those checks for a model of that layout.
tiled() {
	"$MKMODEL" "models/$1.btm" "$2" 32 1 8 2 128 66 2 "$3" >/dev/null ||
		fail "mkmodel $1 failed"
	{ printf 'P6 40 100 255\n'; "$MKSAMPLE" "models/$1.btm" 12000 "$2" 40; } \
		>"$1.ppm"
	{ printf 'P6 20 200 255\n'; tail -c 12000 "$1.ppm"; } >"${1}20.ppm"
	for _f in "$1" "${1}20"; do
		expect_status 0 "$BTZPACK" -q --model="models/$1.btm" \
			-o "$_f.ppm.btz" "$_f.ppm"
	done
	check_routing "$1.ppm" image 14 12000 "random-$2"
	expect_eq "14 3854 7694 11534 12014" \
		"$(chunk_ends "$1.ppm.chunks")" \
		"chunk ends of $1.ppm"
	check_routing "${1}20.ppm" image 14 12000 '*'
	expect_eq 0 "$(grep -c "random-$2" "${1}20.ppm.chunks")" \
		"model chunks of ${1}20.ppm"
}
tiled medt 30 6
tiled mixt 34 8
# A band of 16 rows of 120 pixels (5,760 bytes) does not fit 64 windows:
# it is a chunk of its own, of 88 windows (a medt model's chunks hold up
# to 256); the 8 rows left, 2,880 bytes, are the last.
{ printf 'P6 120 40 255\n'; "$MKSAMPLE" models/medt.btm 14400 31 120; } >medtw.ppm
expect_status 0 "$BTZPACK" -q --model=models/medt.btm -o medtw.ppm.btz medtw.ppm
check_routing medtw.ppm image 14 14400 random-30
expect_eq "14 5774 11534 14414" \
	"$(chunk_ends medtw.ppm.chunks)" \
	"chunk ends of medtw.ppm"
# A reader weighs a model chunk's windows before decoding any (they bound
# its caches): 64 windows of 66 bytes for med, 256 for medt and mixt, 128
# for lpcz (of 64 bytes); one more is refused as corrupt, naming the chunk.
# At the bound, decoding starts and finds the junk payload's rows bad (an
# lpcz chunk has none, so only the refusal).
# long_chunk MODEL BYTES MESSAGE: an archive of one chunk of BYTES for
# MODEL, refused with MESSAGE.
long_chunk() {
	"$MKARCHIVE" long.btz long-chunk "models/$1.btm" "$2" ||
		fail "mkarchive long-chunk $1 $2 failed"
	expect_status 1 "$BTZUNPACK" --model=models -t long.btz
	expect_err "long.btz: member a: chunk 0: model chunk$3"
}
long_chunk med 4224 ": bad rows"
long_chunk med 4290 " of 65 windows (at most 64)"
long_chunk medt 16896 ": bad rows"
long_chunk medt 16962 " of 257 windows (at most 256)"
long_chunk mixt 16962 " of 257 windows (at most 256)"
long_chunk lpcz 8256 " of 129 windows (at most 128)"
# Windows must hold whole pixels; unknown layouts are refused.
expect_status 1 "$MKMODEL" models/bad.btm 25 32 1 8 2 128 64 2
expect_status 1 "$MKMODEL" models/bad.btm 25 32 1 8 2 128 64 3 9

# --- truncated and hostile headers ------------------------------------------
# Pixels cut short: the payload is what there is.
head -c 1013 rgb.ppm >short.ppm
pack short.ppm
check_routing short.ppm image 13 1000 '*'
# A streamed WAV's data size (0xffffffff): to the end of the file.
wav streamed.wav 3000
{ head -c 52 streamed.wav; le 4294967295 4; tail -c +57 streamed.wav; } >s.tmp
mv s.tmp streamed.wav
pack streamed.wav
check_routing streamed.wav audio 56 $(($(wc -c <streamed.wav) - 56)) '*'
# Only a header: text, as it is ASCII.
printf 'P6\n40 30\n255\n' >hdr.ppm
pack hdr.ppm
check_routing hdr.ppm text 0 13 '*'
# Pixels past the end of the file; sizes that overflow 32 bits; 8-bit
# samples; 32-bit pixels; headers cut off; a data chunk before "fmt ".
bmp far.bmp 21 30 54
{ head -c 10 far.bmp; le 2147483647 4; tail -c +15 far.bmp; } >far.tmp
mv far.tmp far.bmp
printf 'P6 4294967296 1 255\n\377\377\377' >wide.ppm
wav bytes.wav 500 1 8
{ head -c 28 bottom.bmp; le 32 2; tail -c +31 bottom.bmp; } >deep.bmp
head -c 40 sound.wav >cut.wav
head -c 30 bottom.bmp >cut.bmp
{ printf 'RIFF\000\000\000\000WAVEdata'; le 4 4; printf 'abcd'; tail -c +21 sound.wav; } >early.wav
{ printf 'RIFF\000\000\000\000WAVELIST'; le 4294967295 4; tail -c +13 sound.wav; } >huge.wav
for f in far.bmp wide.ppm bytes.wav deep.bmp cut.wav cut.bmp early.wav huge.wav; do
	pack "$f"
	check_routing "$f" other 0 "$(wc -c <"$f")" '*'
done

# --- --modality --------------------------------------------------------------
"$MKSAMPLE" models/img.btm 5000 8 >raw.rgb
"$MKSAMPLE" models/snd.btm 5000 9 >raw.pcm
pack raw.rgb
check_routing raw.rgb other 0 5000 '*'
pack raw.rgb --modality=image
check_routing raw.rgb image 0 5000 random-21
pack raw.pcm --modality=audio
check_routing raw.pcm audio 0 5000 random-22
# Raw stereo samples: --channels=2 gives each channel to the model.
"$MKSAMPLE" models/snd.btm 20000 9 0 2 >raw2.pcm
pack raw2.pcm --modality=audio --channels=2
check_routing raw2.pcm audio 0 20000 random-22
expect_status 1 "$BTZPACK" --channels=2 -o c.btz raw2.pcm
expect_err "--channels needs --modality=audio"
no_file c.btz
expect_status 1 "$BTZPACK" --modality=audio --channels=17 -o c.btz raw2.pcm
expect_err "--channels: '17' is not a channel count from 1 to 16"
no_file c.btz
# A header of the forced modality is still kept apart; another is not.
pack rgb.ppm --modality=image
check_routing rgb.ppm image 13 3600 random-21
pack sound.wav --modality=image
check_routing sound.wav image 0 "$(wc -c <sound.wav)" '*'
pack sound.wav --modality=other
check_routing sound.wav other 0 "$(wc -c <sound.wav)" '*'
expect_status 1 "$BTZPACK" --modality=video -o v.btz raw.rgb
expect_err "--modality: 'video' is not"
no_file v.btz
exit 0
