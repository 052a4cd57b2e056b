#!/bin/bash
# tests/daysheet.sh — the printable day sheet (`replica daysheet`), the sheet `replica serve`
# keeps in DIR/daysheet-today.html, and the sample office (`replica sample-office`).
#
#   (a) a day with data: appointments in time order with the patients' names, dates of birth,
#       phones and allergies; a cancelled one listed struck through and not counted; other
#       days' left out; open messages (status open or none) with their last notes, who and
#       when; pending refills (status pending or none); a missing patient record said so; a
#       field two workstations wrote at once shown with its winner, marked, and a footnote
#   (b) every value is HTML-escaped (a name with <script>, &, quotes); the page is one
#       self-contained, well-formed HTML document: no script element, no external resource,
#       a print stylesheet and a Print button
#   (c) an empty day and an empty replica; the default date is today; -o - and no -o: stdout
#   (d) bad input: a bad --date (exit 2), -o to an unwritable path (exit 1, one clear line,
#       nothing left behind)
#   (e) serve writes DIR/daysheet-today.html at start and every REPLICA_DAYSHEET_SECONDS,
#       replacing it atomically (a reader never sees part of one; the inode changes); a
#       booking made meanwhile shows in the next one; a failure to write is logged and the
#       node keeps serving, and the sheet comes back when the path is writable again; SIGUSR1
#       writes it at once
#   (f) the sample office: counts, the staff's PIN hashes, the sheet of its day; 10,000
#       patients timed (reported, bounded loosely)
# Real processes and sockets on 127.0.0.1 (ports picked free); every wait is bounded.
# Prints ok / not ok lines and "N passed, M failed"; exit 77 (skip) without python3.
#
# Standalone: REPLICA=clients/replica bash tests/daysheet.sh
set -u

REPLICA=${REPLICA:-clients/replica}
. "$(dirname "${BASH_SOURCE[0]}")/netlib.sh"
unset REPLICA_DIR REPLICA_USER REPLICA_DAYSHEET_SECONDS

D=2026-11-25
A=$T/A
r --dir "$A" init --office "Riverside & Sons <Clinic>" --device front-desk >/dev/null

# (b)'s hostile values ride along in (a)'s data
EVIL='<script>alert(1)</script> & "Co" '"'"'x'"'"
EVIL_ESC='&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot; &#39;x&#39;'
r --dir "$A" put patients/4410 name="Grace Hopper" dob=1966-12-09 phone=555-0102 --user maria >/dev/null
r --dir "$A" add patients/4410 allergies penicillin latex --user maria >/dev/null
r --dir "$A" put patients/8812 name="$EVIL" dob=1985-12-10 phone=555-0101 --user maria >/dev/null
r --dir "$A" put "appts/$D-1015-2077" patient=2077 provider="Dr. Osei" reason="Blood pressure" \
    status=booked --user maria >/dev/null
r --dir "$A" put "appts/$D-0900-8812" patient=8812 provider="Dr. Osei" reason="Annual physical" \
    status=arrived --user maria >/dev/null
r --dir "$A" put "appts/$D-0930-4410" patient=4410 provider="NP Ramirez" reason="Flu shot" \
    status=cancelled --user maria >/dev/null
r --dir "$A" put "appts/2026-11-26-0900-4410" patient=4410 provider="Dr. Osei" \
    reason="Tomorrow's visit" status=booked --user maria >/dev/null
r --dir "$A" put "appts/2026-11-24-0900-4410" patient=4410 provider="Dr. Osei" \
    reason="Yesterday's visit" status=done --user maria >/dev/null
r --dir "$A" put msgs/m1 patient=4410 caller="Daughter (Ann)" subject="Call back about labs" \
    status=open --user maria >/dev/null
for i in 1 2 3; do
    r --dir "$A" append msgs/m1 thread "note $i of four" --user maria >/dev/null
done
r --dir "$A" append msgs/m1 thread "Dr. Osei will call after clinic" --user jo >/dev/null
r --dir "$A" put msgs/m2 caller="City Pharmacy" subject="A closed question" status=closed \
    --user maria >/dev/null
r --dir "$A" put msgs/m3 caller="$EVIL" subject="No status yet" --user maria >/dev/null
r --dir "$A" put refills/r1 patient=4410 medication="Lisinopril 10 mg" requested_by="City Pharmacy" \
    status=pending --user maria >/dev/null
r --dir "$A" put refills/r2 patient=8812 medication="Approved-drug" requested_by=patient \
    status=approved decided_by=dr-osei --user dr-osei >/dev/null
r --dir "$A" put refills/r3 patient=8812 medication="Denied-drug" requested_by=patient \
    status=denied decided_by=dr-osei --user dr-osei >/dev/null
r --dir "$A" put refills/r4 patient=9999 medication="Metformin 500 mg" requested_by="the patient" \
    --user maria >/dev/null

# has TEXT [FILE]: the sheet holds TEXT (fixed string)
has() { grep -qF -- "$1" "${2:-$T/sheet.html}"; }
# before A B: A's first line in the sheet comes before B's
before() {
    local a b
    a=$(grep -nF -- "$1" "$T/sheet.html" | head -n 1 | cut -d: -f1)
    b=$(grep -nF -- "$2" "$T/sheet.html" | head -n 1 | cut -d: -f1)
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}

# ---- (a) a day with data --------------------------------------------------------------------
r --dir "$A" daysheet --date "$D" -o "$T/sheet.html" 2>"$T/err"
rc=$?
check "(a) daysheet --date D -o FILE exits 0 and says what it wrote" \
    eval '[ $rc -eq 0 ] && grep -q "wrote the day sheet for $D to $T/sheet.html" "$T/err"'
check "(a) the file is mode 0600 (it names patients)" \
    eval '[ "$(stat -c %a "$T/sheet.html")" = 600 ]'
check "(a) it is for the day asked, in words" has "Day sheet for Wednesday 25 November 2026"
check "(a) a single-digit day in words" \
    eval 'r --dir "$A" daysheet --date 2026-12-05 | grep -q "Day sheet for Saturday 5 December 2026<"'
check "(a) appointments in time order: 09:00, 09:30, 10:15" \
    eval 'before ">09:00<" ">09:30<" && before ">09:30<" ">10:15<"'
check "(a) with the patient's name, date of birth, phone" \
    eval 'has "Grace Hopper" && has ">1966-12-09<" && has ">555-0102<"'
check "(a) and allergies" has "Allergies: latex, penicillin"
check "(a) a patient without a record is said so" has "patient 2077 (no patient record)"
check "(a) the cancelled one is listed struck through, and not counted" \
    eval 'grep -q "<tr class=\"cancelled\"><td class=\"time\">09:30<" "$T/sheet.html" &&
          has "2 appointments, and 1 cancelled"'
check "(a) other days' appointments are left out" \
    eval '! has "Tomorrow&#39;s visit" && ! has "Yesterday&#39;s visit"'
check "(a) open messages: status open, and no status; not closed ones" \
    eval 'has "Call back about labs" && has "No status yet" && ! has "A closed question" &&
          grep -q "Open messages<span class=\"count\">2<" "$T/sheet.html"'
check "(a) a message shows its last 3 notes with who wrote them, and how many are older" \
    eval 'has "(1 earlier note)" && ! has "note 1 of four" && has "note 2 of four" &&
          grep -q "maria:</span> note 3 of four" "$T/sheet.html" &&
          grep -q "jo:</span> Dr. Osei will call after clinic" "$T/sheet.html"'
check "(a) note times are local HH:MM" \
    eval 'grep -Eq "<span class=\"who\">([0-9-]+ )?[0-2][0-9]:[0-5][0-9] maria:" "$T/sheet.html"'
check "(a) pending refills: status pending, and none; not approved or denied" \
    eval 'has "Lisinopril 10 mg" && has "Metformin 500 mg" && ! has "Approved-drug" &&
          ! has "Denied-drug" && grep -q "Pending refills<span class=\"count\">2<" "$T/sheet.html"'
check "(a) a refill names its patient and who asked" \
    eval 'grep -F "<td>Lisinopril 10 mg</td><td>City Pharmacy</td>" "$T/sheet.html" | grep -q "Grace Hopper"'

# ---- (b) escaping, self-contained -----------------------------------------------------------
check "(b) a value with <script>, & and quotes comes out escaped (name and caller)" \
    eval '[ "$(grep -cF -- "$EVIL_ESC" "$T/sheet.html")" -eq 2 ]'
check "(b) the office name in the title is escaped" has "Riverside &amp; Sons &lt;Clinic&gt;"
check "(b) no script element anywhere, and nothing of the value unescaped" \
    eval '! grep -qi "<script" "$T/sheet.html" && ! has "alert(1)</script>"'
cat >"$T/lint.py" <<'EOF'
import sys
from html.parser import HTMLParser
VOID = {"meta", "br", "hr", "img", "input", "link"}
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.css = [], [], set(), ""
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "action", "formaction") or (k.startswith("on") and v != "window.print()"):
                self.errors.append("external or scripted attribute %s=%r" % (k, v))
        if tag not in VOID:
            self.stack.append(tag)
    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes %s" % (tag, self.stack[-1:] or "nothing"))
        else:
            self.stack.pop()
    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            self.css += data
p = P()
text = open(sys.argv[1], encoding="utf-8").read()
p.feed(text)
p.close()
assert text.startswith("<!DOCTYPE html>"), "no doctype"
assert not p.stack, "unclosed: %s" % p.stack
assert not p.errors, p.errors
assert not ({"script", "link", "img", "iframe", "object", "embed"} & p.tags), p.tags
assert "@media print" in p.css and "url(" not in p.css and "@import" not in p.css, "css"
assert 'onclick="window.print()"' in text, "print button"
print("ok")
EOF
check "(b) one well-formed page: no external resource, a print stylesheet and a Print button" \
    python3 "$T/lint.py" "$T/sheet.html"

# a conflict: A and A2 (enrolled by file) write Grace's phone at once, then A2 takes A's change
code=$(r --dir "$A" invite --file "$T/a2.prov" --device a2 2>/dev/null | tail -n 1)
r --dir "$T/A2" init --from "$T/a2.prov" --code "$code" >/dev/null 2>&1
r --dir "$A" put patients/4410 phone=555-1111 --user maria >/dev/null
r --dir "$T/A2" put patients/4410 phone=555-2222 --user jo >/dev/null
r --dir "$T/A2" vv -o "$T/a2.vv" 2>/dev/null
r --dir "$A" export --since-file "$T/a2.vv" -o "$T/a2a.bundle" 2>/dev/null
r --dir "$T/A2" import "$T/a2a.bundle" >/dev/null
r --dir "$T/A2" daysheet --date "$D" -o "$T/a2.html" 2>/dev/null
check "(a) a field written at once on two workstations: its winner, marked, and a footnote" \
    eval 'grep -Eq "<td>555-(1111|2222)<sup class=\"mark\"" "$T/a2.html" &&
          has "written differently on two workstations at the same time" "$T/a2.html" &&
          ! has "written differently on two workstations at the same time" "$T/sheet.html"'

# ---- (c) empty day, empty replica, default date, stdout --------------------------------------
r --dir "$A" daysheet --date 2030-01-01 -o "$T/empty.html" 2>/dev/null
check "(c) an empty day: no appointments, said so (messages and refills still listed)" \
    eval 'has "No appointments on this day." "$T/empty.html" &&
          has "Call back about labs" "$T/empty.html" && python3 "$T/lint.py" "$T/empty.html" >/dev/null'
r --dir "$T/B" init --office Empty --device b >/dev/null
r --dir "$T/B" daysheet --date "$D" -o "$T/b.html" 2>/dev/null
check "(c) an empty replica: no appointments, no open messages, no pending refills" \
    eval 'has "No appointments on this day." "$T/b.html" && has "No open messages." "$T/b.html" &&
          has "No pending refill requests." "$T/b.html"'
today=$(date +%F)
r --dir "$A" put "appts/$today-1111-4410" patient=4410 provider="Dr. Today" status=booked >/dev/null
r --dir "$A" daysheet >"$T/stdout.html" 2>"$T/err"
check "(c) without --date: today's (local) sheet, on stdout without -o" \
    eval 'has "Dr. Today" "$T/stdout.html" && has "<!DOCTYPE html>" "$T/stdout.html" && [ ! -s "$T/err" ]'
check "(c) -o - is stdout too" \
    eval '(cd "$T" && r --dir "$A" daysheet --date "$D" -o - 2>/dev/null) | grep -q "Grace Hopper" &&
          [ ! -e "$T/-" ]'

# ---- (d) bad input -----------------------------------------------------------------------------
for bad in 2026-13-01 2026-02-30 2025-02-29 26-11-25 2026-1-5 tomorrow "" 2026-11-25x; do
    r --dir "$A" daysheet --date "$bad" -o "$T/bad.html" 2>"$T/err"
    rc=$?
    check "(d) --date '$bad' is a usage error (exit 2), nothing written" \
        eval '[ $rc -eq 2 ] && grep -q "give a date as YYYY-MM-DD" "$T/err" && [ ! -e "$T/bad.html" ]'
done
check "(d) a leap day is a date" eval 'r --dir "$A" daysheet --date 2024-02-29 -o "$T/leap.html" 2>/dev/null'
r --dir "$A" daysheet --date "$D" -o "$T/no/such/dir/s.html" 2>"$T/err"
rc=$?
check "(d) -o into a missing directory: exit 1, one line naming the path and why" \
    eval '[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
          grep -q "^replica: daysheet: $T/no/such/dir/s.html: No such file or directory (no day sheet was written)" "$T/err"'
touch "$T/plain"
r --dir "$A" daysheet --date "$D" -o "$T/plain/s.html" 2>"$T/err"
rc=$?
check "(d) -o under a file: exit 1 (Not a directory)" \
    eval '[ $rc -eq 1 ] && grep -q "Not a directory" "$T/err"'
mkdir "$T/ro" && chmod 500 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
    r --dir "$A" daysheet --date "$D" -o "$T/ro/s.html" 2>"$T/err"
    rc=$?
    check "(d) -o into a read-only directory: exit 1 (Permission denied), nothing left" \
        eval '[ $rc -eq 1 ] && grep -q "Permission denied" "$T/err" && [ -z "$(ls "$T/ro")" ]'
fi
check "(d) daysheet of a directory that is no replica: exit 1" \
    eval '! r --dir "$T/none" daysheet --date "$D" 2>/dev/null >/dev/null'
check "(d) daysheet takes no argument and no --json" \
    eval 'r --dir "$A" daysheet x 2>/dev/null; [ $? -eq 2 ] &&
          { r --dir "$A" daysheet --json 2>/dev/null; [ $? -eq 2 ]; }'

# ---- (e) serve keeps DIR/daysheet-today.html ------------------------------------------------
SHEET=$A/daysheet-today.html
PORT[A]=$(free_port)
check "(e) REPLICA_DAYSHEET_SECONDS that is no count of seconds: serve refuses (exit 2)" \
    eval 'REPLICA_DAYSHEET_SECONDS=soon r --dir "$A" serve --no-discovery \
            --listen tcp://127.0.0.1:${PORT[A]} 2>"$T/err"; [ $? -eq 2 ] &&
          grep -q REPLICA_DAYSHEET_SECONDS "$T/err"'
# wait_for SECONDS CONDITION...: poll until CONDITION holds
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
REPLICA_DAYSHEET_SECONDS=1 start_node A --no-discovery --listen "tcp://127.0.0.1:${PORT[A]}"
check "(e) serve writes DIR/daysheet-today.html at start, and logs it once" \
    eval 'wait_for 10 test -s "$SHEET" && wait_for 5 grep -q "day sheet for $today written to $SHEET" "$T/A.log"'
check "(e) it is today's sheet, mode 0600" \
    eval 'has "Dr. Today" "$SHEET" && [ "$(stat -c %a "$SHEET")" = 600 ]'
ino=$(stat -c %i "$SHEET")
# read it over and over while it is replaced: every read is a whole page
python3 - "$SHEET" >"$T/reads" <<'EOF'
import sys, time
whole = part = 0
end = time.time() + 3
while time.time() < end:
    try:
        t = open(sys.argv[1], "rb").read()
    except FileNotFoundError:
        part += 1
        continue
    if t.startswith(b"<!DOCTYPE html>") and t.endswith(b"</html>\n"):
        whole += 1
    else:
        part += 1
print(whole, part)
EOF
read -r whole part <"$T/reads"
check "(e) replaced atomically: ${whole:-0} reads over 3 s, each a whole page (none missing or cut)" \
    eval '[ "${whole:-0}" -gt 10 ] && [ "${part:-1}" -eq 0 ]'
check "(e) replaced by a new file (rename): its inode changed" \
    eval 'wait_for 5 eval "[ \"\$(stat -c %i \"$SHEET\")\" != $ino ]"'
r --dir "$A" put "appts/$today-1600-4410" patient=4410 provider="Dr. Late" status=booked >/dev/null
check "(e) a booking made while it serves is on the next sheet" \
    wait_for 10 grep -q "Dr. Late" "$SHEET"
check "(e) it does not log every refresh" \
    eval '[ "$(grep -c "day sheet" "$T/A.log")" -eq 1 ]'
stop A
rc=$?
check "(e) serve stops on SIGTERM (exit 0), leaving the sheet and no temporary file" \
    eval '[ $rc -eq 0 ] && [ -s "$SHEET" ] && [ ! -e "$SHEET.tmp" ]'
rm -f "$SHEET"
mkdir "$SHEET" # a directory in its place: the rename fails
: >"$T/A.log"
REPLICA_DAYSHEET_SECONDS=1 start_node A --no-discovery --listen "tcp://127.0.0.1:${PORT[A]}"
check "(e) a sheet that cannot be written is logged, with why" \
    wait_for 10 grep -q "day sheet: could not write $SHEET: Is a directory (still serving; trying again in 1 s)" "$T/A.log"
check "(e) and the node keeps serving" \
    eval 'sleep 1.5; kill -0 "${PID[A]}" && [ "$(connected A)" -ge 0 ]'
rmdir "$SHEET"
check "(e) once the path is writable again the sheet comes back, and that is logged" \
    eval 'wait_for 10 test -s "$SHEET" && wait_for 5 grep -q "day sheet for $today written" "$T/A.log"'
stop A
check "(e) no temporary file left behind" eval '[ ! -e "$SHEET.tmp" ]'
# the default interval (5 min): SIGUSR1 writes it now
start_node A --no-discovery --listen "tcp://127.0.0.1:${PORT[A]}"
wait_for 10 grep -q "day sheet for $today written to $SHEET (refreshed every 300 s)" "$T/A.log"
r --dir "$A" put "appts/$today-1620-4410" patient=4410 provider="Dr. Signal" status=booked >/dev/null
sleep 0.5
check "(e) by default it is not written again within seconds" eval '! grep -q "Dr. Signal" "$SHEET"'
kill -USR1 "${PID[A]}"
check "(e) SIGUSR1 writes it at once, and says so; the node serves on" \
    eval 'wait_for 5 grep -q "Dr. Signal" "$SHEET" &&
          grep -q "day sheet for $today written to $SHEET (asked by SIGUSR1)" "$T/A.log" &&
          [ "$(connected A)" -ge 0 ]'
stop A

# ---- (f) the sample office ------------------------------------------------------------------
S=$T/S
r --dir "$S" init --office "Sample Practice" --device front-desk >/dev/null
r --dir "$S" sample-office --date "$D" --patients 50 >"$T/out" 2>"$T/err"
rc=$?
check "(f) sample-office --patients 50 exits 0 and says what it wrote, with the demo PINs" \
    eval '[ $rc -eq 0 ] && grep -q "^sample office for $D: 50 patients, " "$T/out" &&
          grep -q "maria 1111" "$T/out"'
napp=$(sed -n 's/.*patients, \([0-9]*\) appointments.*/\1/p' "$T/out")
ncan=$(sed -n 's/.* appointments (\([0-9]*\) cancelled).*/\1/p' "$T/out")
check "(f) 50 patient records, each with name, dob and phone" \
    eval '[ "$(count S patients)" -eq 50 ] &&
          r --dir "$S" ls patients --json | python3 -c "
import json, sys
recs = json.load(sys.stdin)[\"records\"]
assert all(set(r[\"fields\"]) >= {\"name\", \"dob\", \"phone\"} for r in recs), recs[0]"'
check "(f) the day's appointments: as many as it said ($napp), for three providers" \
    eval '[ "$(r --dir "$S" ls appts --prefix "$D-" | wc -l)" -eq "${napp:--1}" ] &&
          [ "$(r --dir "$S" ls appts --prefix "$D-" | grep -o "provider=\"[^\"]*\"" | sort -u | wc -l)" -eq 3 ]'
check "(f) 4 more the day after" \
    eval '[ "$(r --dir "$S" ls appts --prefix 2026-11-26- | wc -l)" -eq 4 ]'
check "(f) 6 messages with threads, 5 refills, 5 staff with Argon2id PIN hashes and roles" \
    eval '[ "$(count S msgs)" -eq 6 ] && [ "$(count S refills)" -eq 5 ] && [ "$(count S staff)" -eq 5 ] &&
          r --dir "$S" get staff/maria pin | grep -q "^.argon2id.v=19.m=65536" &&
          [ "$(r --dir "$S" get staff/jo role)" = nurse ]'
check "(f) thread notes carry their authors" \
    eval 'r --dir "$S" get msgs/$D-0931-4 thread | grep -q " dr-osei  Hold the next dose"'
check "(f) a refill decision carries its doctor, as the change's user and decided_by" \
    eval 'r --dir "$S" ls refills | grep "status=approved" | grep -q "decided_by=dr-osei"'
r --dir "$S" daysheet --date "$D" -o "$T/s.html" 2>/dev/null
if [ "${ncan:-0}" -gt 0 ]; then
    counted="$((napp - ncan)) appointments, and $ncan cancelled<"
else
    counted="${napp:-?} appointments<"
fi
check "(f) its day sheet: the appointments, 4 open messages, 3 pending refills" \
    eval 'has "$counted" "$T/s.html" &&
          grep -q "Open messages<span class=\"count\">4<" "$T/s.html" &&
          grep -q "Pending refills<span class=\"count\">3<" "$T/s.html" &&
          python3 "$T/lint.py" "$T/s.html" >/dev/null'
check "(f) a second run rewrites the same records (no duplicates)" \
    eval 'r --dir "$S" sample-office --date "$D" --patients 50 >/dev/null &&
          [ "$(count S patients)" -eq 50 ] && [ "$(count S msgs)" -eq 6 ]'
for bad in 0 -5 abc 100001 ""; do
    check "(f) --patients '$bad' is a usage error" \
        eval 'r --dir "$S" sample-office --patients "$bad" 2>/dev/null; [ $? -eq 2 ]'
done
r --dir "$T/K" init --office "Big Practice" --device k >/dev/null
t0=$(now_ms)
r --dir "$T/K" sample-office --date "$D" --patients 10000 >"$T/out" 2>&1
rc=$?
took=$(($(now_ms) - t0))
echo "# sample-office --patients 10000: $took ms ($(sed -n 's/.*changes in \(.*\)$/\1/p' "$T/out" | head -n 1) in the command)"
check "(f) 10,000 patients in $took ms (bounded loosely: under 60 s)" \
    eval '[ $rc -eq 0 ] && [ "$(count K patients)" -eq 10000 ] && [ $took -lt 60000 ]'
t0=$(now_ms)
r --dir "$T/K" daysheet --date "$D" -o "$T/k.html" 2>/dev/null
took=$(($(now_ms) - t0))
echo "# daysheet of its day (10,000 patients in the replica): $took ms"
check "(f) and its day sheet" eval 'has "Open messages" "$T/k.html"'

finish
