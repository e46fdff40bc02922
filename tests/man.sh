#!/bin/sh
# The man pages render and pass groff's warnings cleanly, and document
# every option the tools accept.
set -eu
. "$top_srcdir/tests/lib.sh"
command -v groff >/dev/null 2>&1 || skip "groff is not installed"

for page in btzpack.1 btzunpack.1 btztrain.1 btz.5; do
	f="$top_srcdir/man/$page"
	groff -man -ww -z "$f" 2> warn || fail "$page: groff failed"
	[ ! -s warn ] || { cat warn >&2; fail "$page: groff warnings"; }
	for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		grep -q "^\.SH \"*$s" "$f" || fail "$page: no $s section"
	done
	case $page in
	*.1) for s in OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES; do
		grep -q "^\.SH \"*$s" "$f" || fail "$page: no $s section"
	     done ;;
	esac
done

# Every long option in --help appears in the page.
for tool in btzpack btzunpack btztrain; do
	"$top_builddir/$tool" --help | grep -o -e '--[a-z][a-z-]*' | sort -u |
	while read -r opt; do
		esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		grep -q -e "$esc" "$top_srcdir/man/$tool.1" ||
			fail "$tool.1 does not document $opt"
	done
done
