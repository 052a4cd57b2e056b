#!/bin/bash
# tests/frontdesk.sh — the front desk's web server and JSON API through real HTTP on
# 127.0.0.1, against a real `replica serve --http` process (README.md, "The front desk").
#
# Two workstations of one office: A serves the front desk (and its node), B is enrolled from
# a provisioning file and makes a concurrent edit that reaches A as a bundle (a conflict to
# review), then serves its node so A's "saved only here" count drops to 0.
#   (a) the page and its assets; the Host check (421), the page token (403), the Origin check
#   (b) sign-in: wrong PIN and unknown name refused, writes need a session (401), the cookie
#       is HttpOnly and SameSite=Strict, sign-out ends it
#   (c) patients: create, edit (allergies as a set), search by name substring and date of birth
#   (d) Today: book, double booking refused, check in, cancel; the change's user is the staff's
#   (e) messages: take a call, append, close; refills: queue, approve (decided_by), re-decide 409
#   (f) review: concurrent values with who and when; a pick supersedes them
#   (g) bad JSON, a non-object body, an oversized body, unknown routes and methods, bad ids,
#       garbage on the socket: each a 4xx (or a closed connection), and the server keeps serving
#   (h) status: peers, and the changes saved only here, 0 once B has them
#   (i) --http-auth-read: reading needs a session too
# Every wait is bounded; ports are picked free at run time. Prints ok / not ok lines and
# "N passed, M failed"; exit 77 (skip) without python3 or curl.
#
# Standalone: REPLICA=clients/replica bash tests/frontdesk.sh
set -u

REPLICA=${REPLICA:-clients/replica}
command -v curl >/dev/null 2>&1 || { echo "curl not found: skipped"; exit 77; }
. "$(dirname "${BASH_SOURCE[0]}")/netlib.sh"

for n in A B; do PORT[$n]=$(free_port); done
HPORT=$(free_port)
BASE="http://127.0.0.1:$HPORT"

r --dir "$T/A" init --office "Desk Test" --device desk-a --listen "tcp://127.0.0.1:${PORT[A]}" >/dev/null
code=$(r --dir "$T/A" invite --file "$T/b.prov" --device desk-b 2>/dev/null | tail -n 1)
r --dir "$T/B" init --from "$T/b.prov" --code "$code" --listen "tcp://127.0.0.1:${PORT[B]}" \
    >/dev/null 2>&1
r --dir "$T/B" export -o "$T/b.bundle" 2>/dev/null && r --dir "$T/A" import "$T/b.bundle" >/dev/null
check "staff add takes the PIN from standard input" \
    eval 'echo 2468 | r --dir "$T/A" staff add ana --role "front desk" >/dev/null'
check "staff add refuses a short PIN" eval '! echo 12 | r --dir "$T/A" staff add bo 2>/dev/null'
check "staff add refuses a name with a slash, and no PIN at all (exit 2)" \
    eval 'echo 1234 | r --dir "$T/A" staff add a/b 2>/dev/null; [ $? -eq 2 ] && { r --dir "$T/A" staff add bo </dev/null 2>/dev/null; [ $? -eq 2 ]; }'
check "the staff record holds a hash, not the PIN" \
    eval 'r --dir "$T/A" get staff/ana pin | grep -q "^\$argon2id\\$" && ! r --dir "$T/A" get staff/ana pin | grep -q 2468'
echo 1357 | r --dir "$T/A" staff add ben >/dev/null

# start_desk [ARGS]: A's node and front desk; waits until the page answers
start_desk() {
    start_node A --no-discovery --listen "tcp://127.0.0.1:${PORT[A]}" --http "127.0.0.1:$HPORT" "$@"
    local deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        curl -sf -o "$T/page.html" "$BASE/" && return 0
        sleep 0.1
    done
    return 1
}
check "serve --http starts and serves the page" start_desk
r --dir "$T/C" init --office Other >/dev/null   # a replica of its own: its node dials no one
check "serve --http with a malformed address is a usage error (exit 2)" \
    eval 'r --dir "$T/C" serve --no-discovery --http "127.0.0.1:http" 2>/dev/null; [ $? -eq 2 ]'
check "serve --http-auth-read without --http is a usage error (exit 2)" \
    eval 'r --dir "$T/C" serve --no-discovery --http-auth-read 2>/dev/null; [ $? -eq 2 ]'
check "serve --http on a port in use fails (exit 1), saying so" \
    eval 'r --dir "$T/C" serve --no-discovery --http "127.0.0.1:$HPORT" 2>"$T/inuse.err"; [ $? -eq 1 ] && grep -qi "in use" "$T/inuse.err"'
TOKEN=$(grep -o 'name="fd-token" content="[A-Za-z0-9_-]*"' "$T/page.html" | sed 's/.*content="//; s/"$//')
JAR=$T/cookies

# req METHOD PATH [BODY] [CURL-ARGS...]: sets code (HTTP status) and body ($T/body), with the
# token and the cookie jar; BODY "-" for none
req() {
    local method=$1 path=$2 data=${3:--}
    shift 3 2>/dev/null || shift $#
    local args=(-s -o "$T/body" -w '%{http_code}' -X "$method" -b "$JAR" -c "$JAR"
        -H "X-Frontdesk-Token: $TOKEN")
    [ "$data" != "-" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    code=$(curl "${args[@]}" "$@" "$BASE/api$path")
}
# js EXPR: evaluate a Python expression over the last body (as d); prints it
js() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$T/body" 2>/dev/null; }
# expect DESC STATUS [PY-CONDITION]: the last request's status, and a condition over its body
expect() {
    local desc=$1 want=$2 cond=${3:-True}
    if [ "$code" = "$want" ] && [ "$(js "bool($cond)")" = True ]; then ok "$desc"; else
        notok "$desc"
        echo "#   status $code (wanted $want); body: $(head -c 300 "$T/body")"
    fi
}
alive() { kill -0 "${PID[A]}" 2>/dev/null && req GET /status && [ "$code" = 200 ]; }

# ---- (a) the page, Host, token, Origin ------------------------------------------------------
check "the page carries a 43-character token" [ ${#TOKEN} -eq 43 ]
check "the page opens on Today, with every view" \
    eval 'grep -q "id=\"view-today\"" "$T/page.html" && for v in patients messages refills review; do grep -q "id=\"view-$v\"" "$T/page.html" || exit 1; done'
check "app.js and app.css are served, with their types" \
    eval 'curl -sf -D - -o /dev/null "$BASE/app.js" | grep -qi "^content-type: text/javascript" &&
          curl -sf -D - -o /dev/null "$BASE/app.css" | grep -qi "^content-type: text/css"'
check "the page is sent with a Content-Security-Policy and no framing" \
    eval 'curl -s -D - -o /dev/null "$BASE/" | grep -qi "^content-security-policy: default-src .self." &&
          curl -s -D - -o /dev/null "$BASE/" | grep -qi "^x-frame-options: deny"'
req GET /today - -H "Host: evil.example:$HPORT"
expect "another Host (DNS rebinding) is refused with 421" 421 '"Host" in d["error"]'
check "the page itself is refused under another Host" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: attacker.test" "$BASE/")" = 421 ]
req GET /today - -H "Host: localhost:$HPORT"
expect "Host localhost:PORT is this server" 200
code=$(curl -s -o "$T/body" -w '%{http_code}' "$BASE/api/today")
expect "the API without the page token is refused with 403" 403 '"token" in d["error"].lower()'
code=$(curl -s -o "$T/body" -w '%{http_code}' -H "X-Frontdesk-Token: ${TOKEN%?}x" "$BASE/api/today")
expect "a wrong page token is refused with 403" 403
req GET "/today?date=2026-03-02"
expect "Today answers with the token, without sign-in" 200 'd["date"] == "2026-03-02" and d["appts"] == []'

# ---- (b) sign-in --------------------------------------------------------------------------------
req POST /patients '{"name":"Nobody"}'
expect "a write without sign-in is refused with 401" 401 '"sign in" in d["error"]'
req POST /signin '{"name":"ana","pin":"9999"}'
expect "a wrong PIN is refused" 401 'd["error"] == "wrong name or PIN"'
req POST /signin '{"name":"zed","pin":"2468"}'
expect "an unknown name is refused the same way" 401 'd["error"] == "wrong name or PIN"'
req POST /signin '{"name":"ana","pin":"2468"}' -D "$T/headers"
expect "the right PIN signs in" 200 'd["user"] == "ana"'
check "the session cookie is HttpOnly and SameSite=Strict" \
    eval 'grep -i "^set-cookie: fd_session=" "$T/headers" | grep -i httponly | grep -qi "samesite=strict"'
req GET /me
expect "/me names the signed-in user" 200 'd["user"] == "ana"'
req POST /patients '{"name":"Eve"}' -H "Origin: http://evil.example"
expect "a write from another Origin is refused with 403" 403 '"origin" in d["error"]'

# ---- (c) patients ---------------------------------------------------------------------------------
req POST /patients '{"name":"Ana María Ruiz","dob":"1980-02-03","phone":"555-0101","allergies":["penicillin","latex"]}' \
    -H "Origin: $BASE"
expect "create a patient (same Origin)" 201 'len(d["patient"]["id"]) == 8 and sorted(d["patient"]["allergies"]) == ["latex", "penicillin"]'
P1=$(js 'd["patient"]["id"]')
req POST /patients '{"name":"Ben Okafor","dob":"1975-11-30","phone":"555-0102"}'
P2=$(js 'd["patient"]["id"]')
req POST "/patients/$P1" '{"phone":"555-0199","allergies":["latex","sulfa"]}'
expect "edit a patient: allergies become the set given" 200 \
    'd["patient"]["phone"] == "555-0199" and sorted(d["patient"]["allergies"]) == ["latex", "sulfa"] and d["patient"]["name"] == "Ana María Ruiz"'
req GET "/patients?q=RUIZ"
expect "search by name substring, case-insensitive" 200 '[p["id"] for p in d["patients"]] == ["'"$P1"'"] and d["total"] == 1'
req GET "/patients?q=o"
expect "search finds every name holding the text" 200 'd["total"] == 1 and d["patients"][0]["name"] == "Ben Okafor"'
req GET "/patients?dob=1975-11-30"
expect "search by date of birth" 200 '[p["id"] for p in d["patients"]] == ["'"$P2"'"]'
req GET "/patients/$P1"
expect "get a patient" 200 'd["patient"]["dob"] == "1980-02-03"'
req GET "/patients/nosuch"
expect "an unknown patient is 404" 404
req POST /patients '{"name":"X","dob":"1980-13-40"}'
expect "a malformed date of birth is 400" 400 '"dob" in d["error"]'
req POST /patients '{"dob":"1980-01-01"}'
expect "a patient without a name is 400" 400 '"name" in d["error"]'

# ---- (d) Today: book, check in, cancel -----------------------------------------------------------
req POST /appts '{"date":"2026-03-02","time":"0930","patient":"'"$P1"'","provider":"Dr. Lee","reason":"follow-up"}'
expect "book an appointment" 201 'd["appt"]["id"] == "2026-03-02-0930-'"$P1"'" and d["appt"]["status"] == "booked"'
req POST /appts '{"date":"2026-03-02","time":"0900","patient":"'"$P2"'","provider":"Dr. Lee","reason":"flu"}'
req POST /appts '{"date":"2026-03-02","time":"0930","patient":"'"$P1"'"}'
expect "the same patient at the same time again is 409" 409
req POST /appts '{"date":"2026-03-02","time":"0930","patient":"nosuch"}'
expect "booking an unknown patient is 404" 404
req POST /appts '{"date":"2026-03-02","time":"2460","patient":"'"$P1"'"}'
expect "a malformed time is 400" 400
req POST "/appts/2026-03-02-0930-$P1/checkin"
expect "check in: status arrived" 200 'd["appt"]["status"] == "arrived"'
req POST "/appts/2026-03-02-0900-$P2/cancel"
expect "cancel: status cancelled" 200 'd["appt"]["status"] == "cancelled"'
req GET "/today?date=2026-03-02"
expect "the day's schedule, in time order, with patient names" 200 \
    '[(a["time"], a["patient_name"], a["status"]) for a in d["appts"]] == [("0900", "Ben Okafor", "cancelled"), ("0930", "Ana María Ruiz", "arrived")]'
req GET "/today?date=2026-03-03"
expect "another day is empty" 200 'd["appts"] == []'
check "the check-in is in the record's history under the staff's name" \
    eval 'r --dir "$T/A" history "appts/2026-03-02-0930-$P1" --json | python3 -c "
import json, sys
h = json.load(sys.stdin)
assert [c[\"user\"] for c in h[\"changes\"]] == [\"ana\", \"ana\"], h"'
req POST /appts/2026-03-02-0930-nosuch/checkin
expect "checking in an unknown appointment is 404" 404
req POST "/appts/2026-03-02-0930-a%20b/checkin"
expect "an id that is not one is 400" 400
req POST /appts/..%2F..%2Fstaff%2Fana/checkin
expect "a path made of escaped slashes is no route (404)" 404

# ---- (e) messages and refills -----------------------------------------------------------------
req POST /messages '{"caller":"Ana (daughter)","subject":"lab results?","patient":"'"$P1"'","note":"wants a call back"}'
expect "take a call: a new open thread" 201 'd["message"]["status"] == "open" and [t["text"] for t in d["message"]["thread"]] == ["wants a call back"]'
M1=$(js 'd["message"]["id"]')
req POST "/messages/$M1/notes" '{"note":"called back, left voicemail"}'
expect "append to the thread: each note with its user and time" 200 \
    '[(t["text"], t["user"]) for t in d["message"]["thread"]] == [("wants a call back", "ana"), ("called back, left voicemail", "ana")] and d["message"]["thread"][1]["time"] > 1.7e12'
req GET /messages
expect "open messages list it, with the patient's name" 200 '[m["id"] for m in d["messages"]] == ["'"$M1"'"] and d["messages"][0]["patient_name"] == "Ana María Ruiz"'
req POST "/messages/$M1/close" '{"note":"done"}'
expect "close it" 200 'd["message"]["status"] == "closed" and len(d["message"]["thread"]) == 3'
req GET /messages
expect "closed messages leave the open list" 200 'd["messages"] == []'
req POST "/messages/$M1/notes" '{"note":""}'
expect "an empty note is 400" 400
req POST /refills '{"patient":"'"$P2"'","medication":"amoxicillin 500 mg","requested_by":"pharmacy"}'
expect "queue a refill request" 201 'd["refill"]["status"] == "pending" and d["refill"]["patient_name"] == "Ben Okafor"'
F1=$(js 'd["refill"]["id"]')
req GET /refills
expect "the queue lists it" 200 '[f["id"] for f in d["refills"]] == ["'"$F1"'"]'
req POST "/refills/$F1/decide" '{"decision":"maybe"}'
expect "a decision other than approved or denied is 400" 400
req POST "/refills/$F1/decide" '{"decision":"approved"}'
expect "approve it: decided_by is the signed-in user" 200 'd["refill"]["status"] == "approved" and d["refill"]["decided_by"] == "ana"'
req POST "/refills/$F1/decide" '{"decision":"denied"}'
expect "deciding it again is 409" 409 '"already approved by ana" in d["error"]'
req GET /refills
expect "a decided request leaves the queue" 200 'd["refills"] == []'

# ---- (f) review: a conflict made with two replicas and an import ---------------------------
r --dir "$T/A" export -o "$T/a.bundle" 2>/dev/null
r --dir "$T/B" import "$T/a.bundle" >/dev/null
r --dir "$T/B" put "patients/$P2" phone=555-7777 --user bob >/dev/null
req POST "/patients/$P2" '{"phone":"555-8888"}'
r --dir "$T/B" export -o "$T/b2.bundle" 2>/dev/null
check "B's concurrent edit arrives as a bundle" eval 'r --dir "$T/A" import "$T/b2.bundle" >/dev/null'
req GET /review
expect "review shows the field's two values, who wrote each and when" 200 \
    'len(d["conflicts"]) == 1 and d["conflicts"][0]["key"] == "patients/'"$P2"'" and d["conflicts"][0]["field"] == "phone" and sorted((v["value"], v["user"]) for v in d["conflicts"][0]["values"]) == [("555-7777", "bob"), ("555-8888", "ana")] and all(v["time"] > 1.7e12 for v in d["conflicts"][0]["values"])'
DOT=$(js '[v["dot"] for v in d["conflicts"][0]["values"] if v["user"] == "bob"][0]')
req GET "/patients/$P2"
expect "the patient is flagged as in conflict" 200 'd["patient"]["conflict"] is True'
req POST /review/pick '{"key":"patients/'"$P2"'","field":"phone","dot":"'"$DOT"'"}'
expect "pick bob's value" 200
req GET /review
expect "nothing left to review" 200 'd["conflicts"] == []'
req GET "/patients/$P2"
expect "the picked value is the field's value" 200 'd["patient"]["phone"] == "555-7777" and d["patient"]["conflict"] is False'
req POST /review/pick '{"key":"patients/'"$P2"'","field":"phone","dot":"'"$DOT"'"}'
expect "picking again (nothing to resolve) is 409" 409

# a delete on B while A edits: the record stays, and the review offers to keep or delete it
r --dir "$T/A" export -o "$T/a3.bundle" 2>/dev/null
r --dir "$T/B" import "$T/a3.bundle" >/dev/null
r --dir "$T/B" del "patients/$P1" --user bob >/dev/null
req POST "/patients/$P1" '{"phone":"555-4242"}'
r --dir "$T/B" export -o "$T/b3.bundle" 2>/dev/null
r --dir "$T/A" import "$T/b3.bundle" >/dev/null
req GET /review
expect "a delete concurrent with an edit is listed as field \"\", with both sides" 200 \
    'len(d["conflicts"]) == 1 and d["conflicts"][0]["field"] == "" and sorted((v["deleted"], v["user"]) for v in d["conflicts"][0]["values"]) == [(False, "ana"), (True, "bob")]'
DOT=$(js '[v["dot"] for v in d["conflicts"][0]["values"] if not v["deleted"]][0]')
req POST /review/pick '{"key":"patients/'"$P1"'","field":"","dot":"'"$DOT"'"}'
expect "keep the record" 200
req GET /review
expect "nothing left to review after keeping it" 200 'd["conflicts"] == []'
req GET "/patients/$P1"
expect "the kept record has every field back, allergies too, and the edit" 200 \
    'd["patient"]["phone"] == "555-4242" and d["patient"]["name"] == "Ana María Ruiz" and d["patient"]["dob"] == "1980-02-03" and sorted(d["patient"]["allergies"]) == ["latex", "sulfa"]'
check "keeping it was one change by ana, writing back what the delete removed" \
    eval 'r --dir "$T/A" history "patients/$P1" --json | python3 -c "
import json, sys
c = json.load(sys.stdin)[\"changes\"][-1]
assert c[\"user\"] == \"ana\" and sorted(o[\"field\"] for o in c[\"ops\"]) == [\"\", \"allergies\", \"allergies\", \"dob\", \"name\"], c"'
req POST "/patients/$P1" '{"name":""}'
expect "an empty name is 400" 400

# ---- (g) bad requests --------------------------------------------------------------------------
req POST /patients '{"name": "unterminated'
expect "bad JSON is 400, with where" 400 'd["error"].startswith("bad JSON")'
req POST /patients '["a list"]'
expect "a body that is not an object is 400" 400
req POST /patients '{"name":"A","name":"B"}'
expect "duplicate keys are 400" 400
req POST /patients '{"name":42}'
expect "a name that is not a string is 400" 400
req POST /patients '{"name":"tab\u0001"}'
expect "a control character is 400" 400
python3 -c 'print("{\"name\":\"" + "x" * 70000 + "\"}")' >"$T/big.json"
code=$(curl -s -o "$T/body" -w '%{http_code}' -b "$JAR" -H "X-Frontdesk-Token: $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "@$T/big.json" "$BASE/api/patients")
expect "a body over 64 KiB is 413" 413
code=$(curl -s -o "$T/body" -w '%{http_code}' -b "$JAR" -H "X-Frontdesk-Token: $TOKEN" \
    -H 'Transfer-Encoding: chunked' --data-binary "@$T/big.json" "$BASE/api/patients")
expect "a chunked body over 64 KiB is 413" 413
req GET /nosuch
expect "an unknown route is 404" 404 'd["error"] == "no such route"'
req DELETE "/patients/$P1"
expect "an unknown method is 405" 405
req GET /appts
expect "GET on a POST route is 405" 405
req PUT /today '{}'
expect "PUT is 405" 405
req GET "/today?date=yesterday"
expect "a malformed date is 400" 400
req GET "/patients?q=$(python3 -c 'print("a"*300)')"
expect "an overlong query is 400" 400
code=$(curl -s -o "$T/body" -w '%{http_code}' "$BASE/nosuch.html")
expect "an unknown page is 404" 404
python3 - "$HPORT" <<'EOF' >/dev/null 2>&1
import socket, sys
port = int(sys.argv[1])
for junk in [b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 200000 + b"\r\n\r\n",
             b"POST /api/patients HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 99999999999999999999\r\n\r\n" % port,
             b"GET /api/today HTTP/1.1\r\n\r\n", b"GET"]:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        s.recv(4096)
    except OSError:
        pass
    s.close()
EOF
check "after all of that the server is alive and answers" alive

# ---- (h) status: the changes saved only here ------------------------------------------------
req GET /status
expect "status: this workstation, and changes saved only here (no peer heard from yet)" 200 \
    'd["device"] == "desk-a" and d["office"] == "Desk Test" and d["node"] is True and d["unsynced"] > 0 and d["unsynced"] == d["local_changes"]'
start_node B --no-discovery --listen "tcp://127.0.0.1:${PORT[B]}" --peer "tcp://127.0.0.1:${PORT[A]}"
synced() {
    local deadline=$(($(now_ms) + 15000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        req GET /status
        [ "$(js 'd["unsynced"] == 0 and d["connected"] == 1 and d["peers"][0]["name"] == "desk-b" and d["peers"][0]["last_seen"] > 0')" = True ] && return 0
        sleep 0.2
    done
    echo "#   $(cat "$T/body")"
    return 1
}
check "with B connected: B listed, last sync known, nothing saved only here" synced
stop B
disconnected() {
    local deadline=$(($(now_ms) + 10000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        req GET /status
        [ "$(js 'd["connected"]')" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
check "B stopped: A sees it disconnected" disconnected
req POST /patients '{"name":"Written while B is away"}'
req POST /patients '{"name":"And another"}'
req GET /status
expect "two writes with B away: 2 changes saved only here" 200 'd["unsynced"] == 2 and d["connected"] == 0'
start_node B --no-discovery --listen "tcp://127.0.0.1:${PORT[B]}" --peer "tcp://127.0.0.1:${PORT[A]}"
check "B back: nothing saved only here again" synced
req POST /signout
expect "sign out" 200
req POST /patients '{"name":"After"}'
expect "after sign-out writes are refused again" 401

for i in 1 2 3 4 5; do req POST /signin '{"name":"ben","pin":"0000"}'; done
expect "five wrong PINs in a row: the fifth is still 401" 401
req POST /signin '{"name":"ben","pin":"1357"}'
expect "then the name is locked for a while, even with the right PIN (429)" 429 '"try again in" in d["error"]'
req POST /signin '{"name":"ana","pin":"2468"}'
expect "another name is not locked" 200

# ---- (i) --http-auth-read -----------------------------------------------------------------------
stop A
check "the server stops with SIGTERM" [ -z "${PID[A]}" ]
OLD_TOKEN=$TOKEN
start_desk --http-auth-read
TOKEN=$(grep -o 'name="fd-token" content="[A-Za-z0-9_-]*"' "$T/page.html" | sed 's/.*content="//; s/"$//')
rm -f "$JAR"
req GET /today
expect "--http-auth-read: reading needs a session" 401
req POST /signin '{"name":"ben","pin":"1357"}'
req GET "/today?date=2026-03-02"
expect "--http-auth-read: signed in, reading works" 200 'len(d["appts"]) == 2'
check "the old page token is no longer accepted (a new one per start)" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Frontdesk-Token: $OLD_TOKEN" "$BASE/api/me")" = 403 ]
stop A
stop B
finish
