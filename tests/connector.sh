#!/bin/bash
# connector.sh — examples/emr-connector.sh against a real HTTP endpoint (tests/httpsink on
# 127.0.0.1, a port picked free at run time): the office's writes reach it, nothing is sent
# twice, and when the endpoint fails the cursor stays and the next run delivers.
set -u
bin=${REPLICA:-${top_builddir:-.}/clients/replica}
sink=${top_builddir:-.}/tests/httpsink
connector=${top_srcdir:-.}/examples/emr-connector.sh
if ! command -v curl >/dev/null 2>&1; then
    echo "curl is needed by the example connector: skipped"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/replica-connector.XXXXXX") || exit 1
sink_pid=
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok - $1"; pass=$((pass + 1)); else echo "not ok - $1"; fail=$((fail + 1)); fi
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

"$sink" --port-file "$T/port" --out "$T/got" --log "$T/requests" --fail-file "$T/down" \
    --seconds 120 &
sink_pid=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
check "the sink listens" test -s "$T/port"
url="http://127.0.0.1:$(cat "$T/port")/emr/import"

D=$T/office
export REPLICA_DIR=$D
"$bin" init --office "Main Street Clinic" --device front-desk --listen tcp://127.0.0.1:7400 >/dev/null
"$bin" put patients/8812 name=Ada phone=555-0100 --user maria >/dev/null
"$bin" put appts/2026-11-25-0900 patient=8812 status=booked --user maria >/dev/null
"$bin" incr patients/8812 visits --user joe >/dev/null
cursor=$T/emr.cursor
connect() { REPLICA="$bin" BATCH=${BATCH:-500} sh "$connector" "$url" "$cursor" 2>"$T/err"; }

connect
check "the connector runs" test $? -eq 0
check "the endpoint got one line per change and record" test "$(lines "$T/got")" -eq 3
check "...the office's records, in order, and not the device record" \
    test "$(python3 -c 'import json, sys; print(" ".join(json.loads(l)["key"] for l in open(sys.argv[1])))' "$T/got")" \
    = "patients/8812 appts/2026-11-25-0900 patients/8812"
check "...as application/x-ndjson POSTs to the URL" grep -q "^POST /emr/import [0-9]* 200 application/x-ndjson$" "$T/requests"
check "the cursor is saved" test -s "$cursor"
check "...and it is a cursor: nothing after it" \
    test "$("$bin" changes --since "$(cat "$cursor")" --json | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["changes"])')" = 0

requests=$(lines "$T/requests")
connect
check "a second run succeeds" test $? -eq 0
check "...and sends nothing again" test "$(lines "$T/requests")" -eq "$requests"
check "...the endpoint has each line once" test "$(lines "$T/got")" -eq 3

"$bin" put patients/8813 name=Eve --user joe >/dev/null
"$bin" del appts/2026-11-25-0900 --user maria >/dev/null
saved=$(cat "$cursor")
touch "$T/down"
connect
check "while the endpoint fails (500), the connector fails" test $? -ne 0
check "...saying so" grep -q "HTTP 500" "$T/err"
check "...the endpoint took nothing" test "$(lines "$T/got")" -eq 3
check "...and the cursor did not move" test "$(cat "$cursor")" = "$saved"
check "...although it was asked" grep -q " 500 application/x-ndjson$" "$T/requests"
rm "$T/down"
connect
check "once it is back, the next run succeeds" test $? -eq 0
check "...and delivers exactly the two new changes" test "$(lines "$T/got")" -eq 5
check "...the new ones" \
    test "$(python3 -c 'import json, sys; print(" ".join(json.loads(l)["key"] for l in open(sys.argv[1]).readlines()[3:]))' "$T/got")" \
    = "patients/8813 appts/2026-11-25-0900"
check "...the delete as a delete" \
    python3 -c 'import json, sys; l = json.loads(open(sys.argv[1]).readlines()[4]); sys.exit(not any(o["op"] == "del" and o["field"] == "" for o in l["ops"]))' "$T/got"

for i in 1 2 3; do "$bin" put "msgs/m$i" text="call back $i" --user nurse >/dev/null; done
requests=$(lines "$T/requests")
BATCH=1 connect
check "in batches of one change, a run sends each in its own POST" \
    test "$(( $(lines "$T/requests") - requests ))" -eq 3
check "...and the endpoint has every line once" \
    test "$(python3 -c 'import json, sys; ls = [json.loads(l) for l in open(sys.argv[1])]; print(len(ls), len({(l["actor"], l["seq"], l["key"]) for l in ls}))' "$T/got")" = "8 8"

"$bin" put patients/8814 name=Ida >/dev/null
connect_bad() { REPLICA="$bin" sh "$connector" "http://127.0.0.1:1/emr/import" "$cursor" 2>"$T/err"; }
saved=$(cat "$cursor")
connect_bad
check "an endpoint that does not answer fails the run" test $? -ne 0
check "...and leaves the cursor" test "$(cat "$cursor")" = "$saved"

kill "$sink_pid" && wait "$sink_pid"
check "the sink stops on SIGTERM" test $? -eq 0
sink_pid=
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
