#!/bin/sh
# On a machine with a usable NVIDIA GPU: the CUDA engine's integers equal
# the CPU's (test_engine cuda), its archives are the CPU's byte for byte
# (tests/device.sh with the real device), and a GPU training step gives
# the CPU's gradient (test_train cuda). Skipped (77) where no GPU
# answers; --device=cuda then fails clearly.
set -eu
. "$top_srcdir/tests/lib.sh"
# The real device only: not the simulated one.
unset BTZ_GPU_SIM
st=0
"$top_builddir/tests/test_engine" cuda >engine.log 2>&1 || st=$?
cat engine.log
if [ "$st" = 77 ]; then
	"$top_builddir/tests/mkmodel" t.btm 1 32 1 8 2 128 64 0 >/dev/null
	printf 'some text' >in.txt
	expect_status 1 "$BTZPACK" -q --device=cuda --model=t.btm -o a.btz in.txt
	expect_err "--device=cuda: "
	no_file a.btz
	exit 77
fi
[ "$st" = 0 ] || fail "test_engine cuda failed"
# The GPU training step: the CPU's loss and gradient up to float rounding.
"$top_builddir/tests/test_train" cuda >train.log 2>&1 ||
	{ cat train.log; fail "test_train cuda failed"; }
cat train.log
BTZ_DEVICE_TEST=cuda
. "$top_srcdir/tests/device.sh"
