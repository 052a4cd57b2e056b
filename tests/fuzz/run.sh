#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS TARGET... — run by `make fuzz` in a build configured with
# `CC=clang ../configure --enable-fuzz` (see Makefile.am), from the build tree's top.
#
# Writes a fresh seed corpus with tests/fuzz/seeds into a temporary directory (so runs never
# grow the repository), then runs each libFuzzer target SECONDS seconds on its own copy of it
# (-max_total_time). One line per target:
#   fuzz tests/fuzz/NAME: passed (N runs in S s, corpus C inputs)
#   fuzz tests/fuzz/NAME: FAILED (exit E; ...)        followed by the end of its log
# A crash, a sanitizer report, a leak, a timeout (10 s for one input) or running out of
# memory fails the target; its log stays in tests/fuzz/NAME.log and the input that did it in
# tests/fuzz/NAME-crash-* (or -leak-, -timeout-, -oom-): replay it with `tests/fuzz/NAME FILE`.
# Exit status: 0 only when every target passed. The last line is "fuzz: N passed, M failed".
set -u
secs=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work # the targets' replicas go there too, removed with it whatever happens
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if ! tests/fuzz/seeds "$work/seeds" >"$work/seeds.log" 2>&1; then
    cat "$work/seeds.log"
    echo "fuzz: tests/fuzz/seeds failed: no seed corpus"
    echo "fuzz: 0 passed, $# failed"
    exit 1
fi

passed=0 failed=0
for t in "$@"; do
    name=${t##*/}
    log=tests/fuzz/$name.log
    corpus=$work/corpus-$name
    mkdir -p "$corpus"
    cp "$work/seeds/$name"/* "$corpus"/ 2>/dev/null
    rm -f tests/fuzz/"$name"-{crash,leak,timeout,oom}-*
    "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=tests/fuzz/"$name"- "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 0 ] && [ -n "$runs" ]; then
        passed=$((passed + 1))
        echo "fuzz $t: passed (${runs} runs in ${secs} s, corpus $(ls "$corpus" | wc -l) inputs)"
    else
        failed=$((failed + 1))
        echo "fuzz $t: FAILED (exit $rc; log $log; $(ls tests/fuzz/"$name"-*-* 2>/dev/null | head -n 1))"
        tail -n 60 "$log" | sed 's/^/    /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
