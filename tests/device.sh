#!/bin/sh
# --device: the GPU engine writes the CPU's archives byte for byte, and
# each device reads the other's. Here on the simulated device (the GPU
# engine's schedule and kernels run on the CPU); tests/cuda.sh runs the
# same on a real GPU and is skipped where none answers.
set -eu
# tests/cuda.sh sources this file with lib.sh already loaded.
[ -n "${SCRATCH:-}" ] || . "$top_srcdir/tests/lib.sh"
MKMODEL="$top_builddir/tests/mkmodel"
MKSAMPLE="$top_builddir/tests/mksample"
: "${BTZ_DEVICE_TEST:=sim}"
if [ "$BTZ_DEVICE_TEST" = sim ]; then
	BTZ_GPU_SIM=1
	export BTZ_GPU_SIM
fi

mkdir models src
# Two models: one for "other" (context 64, full heads) and one for audio
# with swap16 and shared key/value heads (context 96), with data drawn
# from each, so that both code chunks.
"$MKMODEL" models/t.btm 41 32 2 8 8 128 64 0 >/dev/null || fail "mkmodel failed"
"$MKMODEL" models/s.btm 42 48 1 8 2 96 96 3 1 >/dev/null || fail "mkmodel failed"
"$MKSAMPLE" models/t.btm 9000 3 >src/sample.bin
"$MKSAMPLE" models/s.btm 7001 4 >src/sound.raw
make_text 4000 src/words.txt
# A stereo WAV (PCM, 8 kHz, 16 bits, 12000 bytes of frames), each channel
# drawn from the audio model: the planes method codes it on either device.
{ printf RIFF; le 12036 4; printf 'WAVEfmt '; le 16 4; le 1 2; le 2 2
  le 8000 4; le 32000 4; le 4 2; le 16 2; printf data; le 12000 4
  "$MKSAMPLE" models/s.btm 12000 5 0 2; } >stereo.wav

expect_status 0 "$BTZPACK" -q --device=cpu --model=models/t.btm -o cpu.btz src
expect_status 0 "$BTZPACK" -q --device=cpu --model=models/s.btm \
	--modality=audio -o cpu-audio.btz src/sound.raw
"$BTZUNPACK" -l cpu.btz >list
grep -q "random-41.*src/sample.bin" list ||
	{ cat list >&2; fail "the model coded no chunk of sample.bin"; }
for t in 1 2; do
	expect_status 0 "$BTZPACK" -q -T $t --device=cuda --model=models/t.btm \
		-o gpu$t.btz src
	cmp -s cpu.btz gpu$t.btz ||
		fail "$BTZ_DEVICE_TEST -T $t and CPU archives differ"
done
expect_status 0 "$BTZPACK" -q --device=cuda --model=models/s.btm \
	--modality=audio -o gpu-audio.btz src/sound.raw
cmp -s cpu-audio.btz gpu-audio.btz ||
	fail "$BTZ_DEVICE_TEST and CPU audio archives differ"
expect_status 0 "$BTZPACK" -q --device=cpu --model=models/s.btm \
	-o cpu-stereo.btz stereo.wav
"$BTZUNPACK" -l cpu-stereo.btz >list
grep -q "random-42.*stereo.wav" list ||
	{ cat list >&2; fail "the model coded no chunk of stereo.wav"; }
expect_status 0 "$BTZPACK" -q --device=cuda --model=models/s.btm \
	-o gpu-stereo.btz stereo.wav
cmp -s cpu-stereo.btz gpu-stereo.btz ||
	fail "$BTZ_DEVICE_TEST and CPU stereo archives differ"

# Each reads the other's.
mkdir x y z
expect_status 0 "$BTZUNPACK" --device=cuda --model=models -C x cpu.btz
same_file src/sample.bin x/src/sample.bin
expect_status 0 "$BTZUNPACK" --device=cuda --model=models -C z cpu-audio.btz
same_file src/sound.raw z/src/sound.raw
expect_status 0 "$BTZUNPACK" --device=cpu --model=models -C y gpu1.btz
same_tree src y/src
expect_status 0 "$BTZUNPACK" --device=auto --model=models -t gpu-audio.btz
mkdir w
expect_status 0 "$BTZUNPACK" --device=cuda --model=models -C w cpu-stereo.btz
same_file stereo.wav w/stereo.wav

# -v says where the models ran.
expect_status 0 "$BTZUNPACK" -v --device=cuda --model=models -t cpu.btz
expect_err "models run on the"
expect_status 1 "$BTZPACK" -q --device=tpu --model=models/t.btm -o z.btz src
expect_err "--device: 'tpu' is not cpu, cuda or auto"
no_file z.btz
