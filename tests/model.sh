#!/bin/sh
# The model method end to end: btzpack --model codes chunks of the model's
# modality, btzunpack finds the model by fingerprint (--model,
# BTZ_MODEL_PATH) or refuses, naming what it wanted and where it looked.
set -eu
. "$top_srcdir/tests/lib.sh"
MKMODEL="$top_builddir/tests/mkmodel"
MKSAMPLE="$top_builddir/tests/mksample"

mkdir models other
# A small generated model (context 64) for the "other" modality, and data
# drawn from it, which it predicts better than LZMA2 or storing can.
"$MKMODEL" models/t.btm 11 32 1 8 2 128 64 0 || fail "mkmodel failed"
"$MKMODEL" other/u.btm 12 32 1 8 2 128 64 0 || fail "mkmodel failed"
mkdir src
"$MKSAMPLE" models/t.btm 20000 5 > src/sample.txt || fail "mksample failed"
make_text 5000 src/words.txt
# The sample is binary ("other"), the words are text: only the sample's
# chunks may use the model.
expect_status 0 "$BTZPACK" -q --model=models/t.btm -o a.btz src
"$BTZUNPACK" -l a.btz > list
grep -q "other .*random-11 .*src/sample.txt" list ||
	{ cat list >&2; fail "the model coded no chunk of sample.txt"; }
grep -q "text .*lzma2 .*src/words.txt" list ||
	{ cat list >&2; fail "words.txt not coded by lzma2"; }

# The model table names only the models chunks use: text alone packs to
# the same archive with the model loaded or not.
mkdir wsrc
cp src/words.txt wsrc/
expect_status 0 "$BTZPACK" -q --model=models/t.btm -o w1.btz wsrc
expect_status 0 "$BTZPACK" -q --no-default-models -o w2.btz wsrc
cmp -s w1.btz w2.btz || fail "an unused model changed the archive"
! "$BTZUNPACK" -l -v w1.btz | grep -q "^model " ||
	fail "an unused model is in the archive's table"

# Unpacking needs that exact model.
mkdir x
expect_status 1 "$BTZUNPACK" -C x a.btz
expect_err "needs model 'random-11' (fingerprint"
expect_err "searched"
[ -z "$(ls -A x)" ] || fail "files written without the model: $(ls -A x)"
expect_status 1 "$BTZUNPACK" --model=other/u.btm -t a.btz
expect_err "other/u.btm ("
expect_status 0 "$BTZUNPACK" --model=models/t.btm -C x a.btz
same_tree src x/src
rm -rf x && mkdir x
BTZ_MODEL_PATH="$SCRATCH/other:$SCRATCH/models" \
	expect_status 0 "$BTZUNPACK" -C x a.btz
same_tree src x/src
expect_status 0 "$BTZUNPACK" --model=models -t a.btz

# The archive does not depend on the thread count.
expect_status 0 "$BTZPACK" -q -T 1 --model=models/t.btm -o a1.btz src
expect_status 0 "$BTZPACK" -q -T 2 --model=models/t.btm -o a2.btz src
cmp -s a1.btz a2.btz || fail "-T 1 and -T 2 archives differ"
cmp -s a.btz a1.btz || fail "default -T and -T 1 archives differ"

# Every kernel writes the same archive, and reads every other's.
BTZ_KERNEL=scalar expect_status 0 "$BTZPACK" -q --model=models/t.btm -o s.btz src
cmp -s a.btz s.btz || fail "scalar and default kernels write different archives"
for k in scalar avx2 avx512vnni; do
	BTZ_KERNEL=$k expect_status 0 "$BTZUNPACK" --model=models -t a.btz
done

# Chunks decoded together in lockstep (as on a GPU; BTZ_LOCKSTEP forces
# it here) give the same files; a damaged chunk inside a group fails
# alone, with the message decoding it alone gives.
for k in 2 3 8; do
	rm -rf x && mkdir x
	BTZ_LOCKSTEP=$k expect_status 0 "$BTZUNPACK" -T 2 --model=models -C x a.btz
	same_tree src x/src
done
cp a.btz f.btz
printf '\377' | dd of=f.btz bs=1 seek=7000 conv=notrunc 2>/dev/null
BTZ_LOCKSTEP=1 expect_status 1 "$BTZUNPACK" --model=models -t f.btz
expect_err "member src/sample.txt: chunk "
cp "$ERR" err1
BTZ_LOCKSTEP=8 expect_status 1 "$BTZUNPACK" --model=models -t f.btz
cmp -s err1 "$ERR" ||
	{ cat err1 "$ERR" >&2; fail "lockstep reports the damage differently"; }

# A damaged model file is refused clearly.
head -c 100 models/t.btm > bad.btm
expect_status 1 "$BTZPACK" -q --model=bad.btm -o b.btz src
expect_err bad.btm
no_file b.btz

# Without --model, btzpack takes the installed models (BTZ_MODELS_DIR
# stands for the installed directory), one per modality, and btzunpack
# finds them there; --no-default-models turns them off.
unset BTZ_MODEL_PATH
BTZ_MODELS_DIR="$SCRATCH/models"
export BTZ_MODELS_DIR
expect_status 0 "$BTZPACK" -q -o d.btz src
cmp -s a.btz d.btz || fail "the default model gave another archive than --model"
expect_status 0 "$BTZUNPACK" -t d.btz
expect_status 0 "$BTZPACK" -q --no-default-models -o n.btz src
"$BTZUNPACK" -l n.btz > list
! grep -q "random-11" list || { cat list >&2; fail "--no-default-models used a model"; }
# BTZ_MODEL_PATH comes first; a model --model gave wins over both. (Data
# drawn from u.btm, which only that model codes, shows which one ran.)
mkdir src12
"$MKSAMPLE" other/u.btm 9000 6 > src12/sample12.bin || fail "mksample failed"
BTZ_MODEL_PATH="$SCRATCH/other"
export BTZ_MODEL_PATH
expect_status 0 "$BTZPACK" -q -o o.btz src12
"$BTZUNPACK" -l -v o.btz | grep -q "^model .* random-12$" ||
	fail "BTZ_MODEL_PATH's model not in the archive's table"
expect_status 0 "$BTZPACK" -q --model=models/t.btm -o m.btz src
cmp -s a.btz m.btz || fail "--model did not override the default model"
unset BTZ_MODEL_PATH
# A replaced model moves to retired/: btzpack no longer picks it, and the
# archives it made still unpack.
mkdir models/retired
mv models/t.btm models/retired/
cp other/u.btm models/
expect_status 0 "$BTZPACK" -q -o r.btz src12
"$BTZUNPACK" -l -v r.btz | grep -q "^model .* random-12$" ||
	fail "the model that replaced a retired one is not the default"
expect_status 0 "$BTZUNPACK" -t d.btz
rm models/u.btm
mv models/retired/t.btm models/
# A broken installed model is skipped with a warning; packing goes on.
cp bad.btm models/0bad.btm
expect_status 2 "$BTZPACK" -o w.btz src
expect_err "0bad.btm"
expect_status 0 "$BTZUNPACK" -t w.btz
