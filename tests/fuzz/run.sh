#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS TARGET... — run by `make fuzz` in a build configured with
# `CC=clang ../configure --enable-fuzz` (see Makefile.am), from the build tree's top.
#
# Writes a fresh seed corpus with tests/fuzz/seeds into a temporary directory (so runs never
# grow the repository), with the provisionings of the office the seeds are made in, which the
# targets' replicas join (FUZZ_OFFICE_DIR, tests/fuzz/fuzz.h); then runs each libFuzzer target
# SECONDS seconds on its own copy of the corpus (-max_total_time). One line per target:
#   fuzz tests/fuzz/NAME: passed (N runs in S s, corpus C inputs)
#   fuzz tests/fuzz/NAME: FAILED (exit E; ...)        followed by the end of its log
# A crash, a sanitizer report, a leak, a timeout (10 s for one input) or running out of
# memory fails the target; its log stays in tests/fuzz/NAME.log, the input that did it in
# tests/fuzz/NAME-crash-* (or -leak-, -timeout-, -oom-) and the office's provisionings in
# tests/fuzz/NAME-office/: replay it with
#   FUZZ_OFFICE_DIR=tests/fuzz/NAME-office tests/fuzz/NAME FILE
# Exit status: 0 only when every target passed. The last line is "fuzz: N passed, M failed".
set -u
secs=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work # the targets' replicas go there too, removed with it whatever happens
export FUZZ_OFFICE_DIR=$work/seeds # DIR/fuzzer.prov and DIR/peer.prov (tests/fuzz/fuzz.h)
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
    rm -rf tests/fuzz/"$name"-office
    "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=tests/fuzz/"$name"- "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 0 ] && [ -n "$runs" ]; then
        passed=$((passed + 1))
        echo "fuzz $t: passed (${runs} runs in ${secs} s, corpus $(ls "$corpus" | wc -l) inputs)"
    else
        failed=$((failed + 1))
        mkdir -p tests/fuzz/"$name"-office
        cp "$FUZZ_OFFICE_DIR"/*.prov tests/fuzz/"$name"-office/
        echo "fuzz $t: FAILED (exit $rc; log $log; $(ls tests/fuzz/"$name"-{crash,leak,timeout,oom}-* 2>/dev/null | head -n 1); replay with FUZZ_OFFICE_DIR=tests/fuzz/$name-office)"
        tail -n 60 "$log" | sed 's/^/    /'
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
