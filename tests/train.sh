#!/bin/sh
# btztrain end to end on a tiny model: it learns (validation falls), its
# export codes real chunks in btzpack and unpacks, a stopped and resumed run
# equals an uninterrupted one, and bad input is refused without damage.
set -eu
. "$top_srcdir/tests/lib.sh"
BTZTRAIN="$top_builddir/btztrain"
[ -x "$BTZTRAIN" ] || fail "$BTZTRAIN is not built"
export OMP_NUM_THREADS=2

# Text to learn: words drawn at random from a small vocabulary.
make_text 90000 all.txt
head -c 80000 all.txt > train.bin
tail -c 8192 all.txt > valid.bin
small="-d 32 --layers 1 --heads 4 --kv-heads 2 --ff 64 --context 64 -b 8
	--warmup 5 --lr 1e-2 --eval-every 50 --valid=valid.bin --calib-bytes 4096
	-q --modality=text --name=tiny --device=cpu"

# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 200 -o a.btm train.bin
[ -s a.btm ] || fail "no model written"
curve=a.btm.train/curve.tsv
[ "$(wc -l < $curve)" -eq 5 ] || { cat $curve >&2; fail "4 validations expected"; }
first=$(awk 'NR == 2 { print $5 }' $curve)
last=$(awk 'END { print $5 }' $curve)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.15) }' ||
	fail "validation did not fall: $first -> $last bits/byte"

# The exported model beats LZMA2 on held-out text and unpacks it.
mkdir src
cp valid.bin src/
expect_status 0 "$BTZPACK" -q --model=a.btm -o s.btz src
"$BTZUNPACK" -l s.btz > list
grep -q "tiny .*src/valid.bin" list ||
	{ cat list >&2; fail "the trained model coded no chunk"; }
mkdir out
expect_status 0 "$BTZUNPACK" -q --model=a.btm -C out s.btz
same_file src/valid.bin out/src/valid.bin

# Stopped after 77 steps and resumed: the same model as one run.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 200 --stop-after 77 -o b.btm train.bin
[ ! -e b.btm ] || fail "a stopped run exported a model"
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 200 --resume -o b.btm train.bin
cmp -s a.btm b.btm || fail "resumed run differs from the uninterrupted one"

# On the GPU (simulated here) the same run learns the same: its
# validation matches the CPU's (float32 products) up to float rounding;
# with bf16 products (the default where the CPU has them) it is close.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small --fp32 -n 50 -o c50.btm train.bin
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 50 -o b50.btm train.bin
# shellcheck disable=SC2086
BTZ_GPU_SIM=1 expect_status 0 "$BTZTRAIN" $small --device=cuda -n 50 \
	-o g50.btm train.bin
vc=$(awk 'END { print $5 }' c50.btm.train/curve.tsv)
vg=$(awk 'END { print $5 }' g50.btm.train/curve.tsv)
vb=$(awk 'END { print $5 }' b50.btm.train/curve.tsv)
note "validation at step 50: CPU $vc, simulated GPU $vg, CPU by default $vb"
[ -n "$vc" ] && [ -n "$vg" ] || fail "no validation in the curves"
awk -v a="$vc" -v b="$vg" 'BEGIN { d = a - b; exit !(d < 0.005 && d > -0.005) }' ||
	fail "GPU and CPU training differ: validation $vg against $vc"
awk -v a="$vc" -v b="$vb" 'BEGIN { d = a - b; exit !(d < 0.05 && d > -0.05) }' ||
	fail "bf16 and float32 training differ: validation $vb against $vc"
rm -f c50.btm g50.btm b50.btm

# --init starts from a checkpoint's weights: 10 more steps from a.btm's
# are well below where the fresh run stood at step 50.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 10 --eval-every 10 \
	--init a.btm.train/model.btf -o i.btm train.bin
vi=$(awk 'END { print $5 }' i.btm.train/curve.tsv)
note "validation: fresh at step 50 $first, from a.btm's weights $vi"
awk -v a="$first" -v b="$vi" 'BEGIN { exit !(b < a - 0.1) }' ||
	fail "--init did not start from the checkpoint: $vi against $first"
# From the exported model itself, its float network recovered from the
# integer one: with no learning, validation where a's run ended.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 10 --eval-every 10 --lr 1e-12 \
	--lr-min 1e-12 --init a.btm -o k.btm train.bin
vk=$(awk 'END { print $5 }' k.btm.train/curve.tsv)
note "validation: a's run at its end $last, from a.btm itself $vk"
awk -v a="$last" -v b="$vk" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' ||
	fail "--init a.btm did not start from a's weights: $vk against $last"
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 10 --init valid.bin -o l.btm train.bin
expect_err "--init"

# A new text model codes through the match layer (flags bit 0, at byte
# 36); 0 steps from a model re-export it, here without the layer, and
# both code the held-out text, the layer smaller (its words recur).
flags() { od -An -t u4 -j 36 -N 4 "$1" | tr -d ' '; }
[ "$(flags a.btm)" = 1 ] || fail "a new text model has flags $(flags a.btm)"
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 0 --init a.btm --no-match -o nm.btm \
	train.bin
expect_err "exported without training"
[ "$(flags nm.btm)" = 0 ] || fail "--no-match left flags $(flags nm.btm)"
# Re-exports MODEL.btm with 0 steps, which must keep FLAGS, and packs src
# with it into MODEL.btz, which must unpack.
reexport_pack() {
	# shellcheck disable=SC2086
	expect_status 0 "$BTZTRAIN" $small -n 0 --init "$1.btm" -o "$1-2.btm" \
		train.bin
	[ "$(flags "$1-2.btm")" = "$2" ] || fail "--init did not keep the flags"
	expect_status 0 "$BTZPACK" -q --model="$1.btm" -o "$1.btz" src
	rm -rf out && mkdir out
	expect_status 0 "$BTZUNPACK" -q --model="$1.btm" -C out "$1.btz"
	same_file src/valid.bin out/src/valid.bin
}
reexport_pack nm 0
sa=$(wc -c < s.btz)
sn=$(wc -c < nm.btz)
note "valid.bin packed: $sa bytes with the match layer, $sn without"
[ "$sa" -lt "$sn" ] || fail "the match layer did not pay: $sa against $sn"

# --span records an attention span (bits 16-31: span / 16), which --init
# keeps; btzpack codes with it and the archive unpacks; a span must be a
# multiple of 16 below the context.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 0 --init a.btm --span 16 -o sp.btm \
	train.bin
[ "$(flags sp.btm)" = 65537 ] || fail "--span 16 gave flags $(flags sp.btm)"
reexport_pack sp 65537
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 0 --init a.btm --span 64 -o z.btm \
	train.bin
expect_err "not below context"
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 0 --init a.btm --span 20 -o z.btm \
	train.bin
expect_err "not a multiple of 16"

# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 0 -o z.btm train.bin
expect_err "--steps must be at least 1"

# --ema validates and exports the weights' running average: with a
# weight of 1e-6 a step it stays at the starting weights however fast
# the weights themselves move (and they do: a's validation moves away).
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 10 --eval-every 10 --lr 3e-2 \
	--warmup 0 --init a.btm -o fast.btm train.bin
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 10 --eval-every 10 --lr 3e-2 \
	--warmup 0 --init a.btm --ema 0.999999 -o avg.btm train.bin
vm=$(awk 'END { print $5 }' fast.btm.train/curve.tsv)
vn=$(awk 'END { print $5 }' avg.btm.train/curve.tsv)
note "validation after 10 steps from a.btm at 3e-2: $vm; their average: $vn"
awk -v a="$last" -v b="$vn" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' ||
	fail "--ema did not validate the average: $vn against $last"
awk -v a="$last" -v b="$vm" 'BEGIN { d = a - b; exit !(d > 0.02 || d < -0.02) }' ||
	fail "10 steps at 3e-2 did not move the weights: $vm against $last"
cmp -s fast.btm avg.btm && fail "--ema exported the same model"
# Its average is checkpointed: a stopped and resumed run equals one run.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 60 --ema 0.9 -o e1.btm train.bin
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 60 --ema 0.9 --stop-after 25 \
	-o e2.btm train.bin
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $small -n 60 --ema 0.9 --resume -o e2.btm \
	train.bin
cmp -s e1.btm e2.btm || fail "--ema: resumed run differs from one run"
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 10 --ema 1 -o e3.btm train.bin
expect_err "--ema: 1 is not below 1"
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small --resume --init a.btm.train/model.btf \
	-o j.btm train.bin
expect_err "--init and --resume exclude each other"

# Refusals: existing output, missing data, bad numbers, no checkpoint.
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 2 -o a.btm train.bin
expect_err "a.btm: already exists"
cmp -s a.btm b.btm || fail "a refused run changed the existing model"
expect_status 1 "$BTZTRAIN" -q -o c.btm missing.bin
expect_err "missing.bin: No such file"
expect_status 1 "$BTZTRAIN" -q -n x -o c.btm train.bin
expect_err "--steps: not a number"
expect_status 1 "$BTZTRAIN" -q --heads 3 -o c.btm train.bin
expect_status 1 "$BTZTRAIN" -q --device=tpu -o c.btm train.bin
expect_err "--device: 'tpu' is not cpu, cuda or auto"
expect_status 1 "$BTZTRAIN" -q --resume -C nowhere -o c.btm train.bin
expect_err "--resume"
# An image model in the med layout reads each image's width from a
# manifest; a malformed line is refused, naming the file and the line.
LC_ALL=C awk 'BEGIN { for (i = 0; i < 2; i++) for (y = 0; y < 40; y++)
	for (x = 0; x < 48; x++)
		printf "%c%c%c", 40 + x + 2 * y, 30 + 2 * x + y, 100 + x + i }' >img.bin
printf 'a\t0\t5760\t48x40\nb\t5760\t5760\t48x40\n' >img.manifest
printf 'a\t0\t5760\n' >bad.manifest
img="-d 32 --layers 1 --heads 4 --kv-heads 2 --ff 64 --context 48 -b 4 -n 10
	--calib-bytes 4096 -q --modality=image --transform=med --device=cpu"
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $img --manifest=bad.manifest -o m.btm img.bin
expect_err "bad.manifest: line 1"
[ ! -e m.btm ] || fail "a failed run left m.btm"
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $img --manifest=img.manifest -o m.btm img.bin
{ printf 'P6 48 40 255\n'; head -c 5760 img.bin; } >img.ppm
expect_status 0 "$BTZPACK" -q --model=m.btm -o img.btz img.ppm
expect_status 0 "$BTZUNPACK" -q --model=m.btm -C out img.btz
same_file img.ppm out/img.ppm
# The same in tiles (medt): btztrain lays the images out in chunks of
# whole bands, as btzpack cuts them, and its windows start where
# btzpack's do; the model packs and unpacks a PPM.
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" ${img%med --device=cpu}medt --device=cpu \
	--manifest=img.manifest -o t.btm img.bin
expect_status 0 "$BTZPACK" -q --model=t.btm -o imgt.btz img.ppm
rm -rf out && mkdir out
expect_status 0 "$BTZUNPACK" -q --model=t.btm -C out imgt.btz
same_file img.ppm out/img.ppm

# An audio model's network carried onto another layout (--init with
# --transform): lmsz's weights trained on as lpcz, which then codes a
# raw 16-bit stream's chunks and unpacks it; a layout whose windows
# start on other units (pixels) is refused.
LC_ALL=C awk 'BEGIN { for (i = 0; i < 16000; i++) {
	s = int(8192 + 3000 * sin(i / 7) + 900 * sin(i / 2.3) + i * 7919 % 61)
	lo = s % 256; if (lo == 0) lo = 1
	printf "%c%c", lo, int(s / 256) } }' >tone.raw
snd="-d 32 --layers 1 --heads 4 --kv-heads 2 --ff 64 --context 48 -b 8
	--warmup 5 --lr 1e-2 --calib-bytes 4096 --device=cpu"
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" -q $snd -n 20 --modality=audio --transform=lmsz \
	--name=snd -o s.btm tone.raw
# shellcheck disable=SC2086
expect_status 0 "$BTZTRAIN" $snd -n 100 --init s.btm --transform=lpcz \
	--name=snd-lpcz -o p.btm tone.raw
expect_err "context 48, layout lpcz)"
expect_status 0 "$BTZPACK" -q --model=p.btm --modality=audio -o tone.btz \
	tone.raw
"$BTZUNPACK" -l -v -v tone.btz > list
grep -q "snd-lpcz" list || { cat list >&2; fail "lpcz coded no chunk"; }
rm -rf out && mkdir out
expect_status 0 "$BTZUNPACK" -q --model=p.btm -C out tone.btz
same_file tone.raw out/tone.raw
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" -q $snd -n 2 --init s.btm --transform=medt \
	-o q.btm tone.raw
expect_err "--transform=medt does not fit the windows of s.btm's audio model"
[ ! -e q.btm ] || fail "a refused run left q.btm"

head -c 10 train.bin > tiny.bin
# shellcheck disable=SC2086
expect_status 1 "$BTZTRAIN" $small -n 2 -o c.btm tiny.bin
expect_err "fewer than one window"
[ ! -e c.btm ] || fail "a failed run left c.btm"
finish
