#!/bin/bash
# examples.sh — the embedding examples build (make check does that), run, and end converged.
set -u
bin=${top_builddir:-.}/examples
dir=$(mktemp -d "${TMPDIR:-/tmp}/replica-example-XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok - $1"; pass=$((pass + 1)); else echo "not ok - $1"; fail=$((fail + 1)); fi
}
out=$("$bin/office_day" "$dir/office" 2>&1)
rc=$?
echo "$out"
check "office_day exits 0" test $rc -eq 0
check "office_day converges" grep -qx converged <<<"$out"
check "the concurrent edit is kept as two values" test "$(grep -c '^  [* ] phone = ' <<<"$out")" -eq 2
check "exactly one of them is shown" test "$(grep -c '^  \* phone = ' <<<"$out")" -eq 1
check "a second run refuses an existing directory" bash -c "! '$bin/office_day' '$dir/office' 2>/dev/null"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
