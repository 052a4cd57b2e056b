#!/bin/sh
# Conditions go to check_sh in single quotes on purpose; $bin may hold a command line.
# shellcheck disable=SC2016,SC2086,SC2034,SC2154
# tests/cli.sh — black-box test of the `replica` command.
#
# Usage: tests/cli.sh            (finds ./clients/replica or ../clients/replica)
#        REPLICA=path/to/replica tests/cli.sh
#        REPLICA="valgrind -q --error-exitcode=99 clients/.libs/replica" tests/cli.sh
#
# Prints "ok - ..." / "not ok - ..." lines (details of a failure on lines starting with '#')
# and ends with "N passed, M failed"; exits 1 if anything failed. Needs python3 for JSON checks.
set -u

if [ -n "${REPLICA:-}" ]; then
    bin=$REPLICA
elif [ -x ./clients/replica ]; then
    bin=./clients/replica
elif [ -x ../clients/replica ]; then
    bin=../clients/replica
else
    echo "not ok - find the replica binary (set REPLICA)"
    echo "0 passed, 1 failed"
    exit 1
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is needed to check the JSON output: skipped"
    exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/replica-cli.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM

# A hung command is killed, which shows up as an exit status >= 128 (a "crash").
if command -v timeout >/dev/null 2>&1; then
    limit="timeout -s KILL 30"
else
    limit=""
fi

# Replicas in this test: A and B share an office, C is another office.
A=$T/a
B=$T/b
C=$T/c
unset REPLICA_DIR REPLICA_USER

npass=0
nfail=0

pass() {
    npass=$((npass + 1))
    echo "ok - $1"
}

# fail DESC: count a failure and show what the last command did.
fail() {
    nfail=$((nfail + 1))
    echo "not ok - $1"
    echo "#   exit status: $rc"
    sed -n '1,5s/^/#   stdout: /p' "$T/out"
    sed -n '1,5s/^/#   stderr: /p' "$T/err"
}

# run ARGS...: run the command; sets rc, out (stdout) and err (stderr).
run() {
    $limit $bin "$@" >"$T/out" 2>"$T/err"
    rc=$?
    out=$(cat "$T/out")
    err=$(cat "$T/err")
}

# ok DESC ARGS...: the command succeeds.
ok() {
    desc=$1
    shift
    run "$@"
    if [ "$rc" -eq 0 ]; then pass "$desc"; else fail "$desc"; fi
}

# same DESC EXPECTED ARGS...: the command succeeds and prints exactly EXPECTED.
same() {
    desc=$1
    want=$2
    shift 2
    run "$@"
    if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then
        pass "$desc"
    else
        fail "$desc"
        echo "#   expected: $want"
    fi
}

# refused DESC CODE ARGS...: the command fails cleanly: exit status CODE (or any status from
# 1 to 127 when CODE is "any"), exactly one line "replica: ..." on stderr, nothing on stdout.
refused() {
    desc=$1
    code=$2
    shift 2
    run "$@"
    lines=$(wc -l <"$T/err")
    if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] &&
        { [ "$code" = any ] || [ "$rc" -eq "$code" ]; } &&
        [ "$lines" -eq 1 ] && [ "${err#replica: }" != "$err" ] && [ -z "$out" ]; then
        pass "$desc"
    else
        fail "$desc"
    fi
}

# check DESC COMMAND...: a condition (after a run) holds.
check() {
    desc=$1
    shift
    if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# check_sh DESC CONDITION: a shell condition (evaluated) holds.
check_sh() {
    if eval "$2"; then pass "$1"; else fail "$1"; fi
}

# json PYEXPR: the last stdout is JSON (bound to d) and PYEXPR is true of it.
json() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)
' "$T/out" "$1" 2>/dev/null
}

has() {
    case $out in *"$1"*) return 0 ;; *) return 1 ;; esac
}

has_err() {
    case $err in *"$1"*) return 0 ;; *) return 1 ;; esac
}

digest_of() {
    $limit $bin --dir "$1" digest 2>/dev/null
}

# same_digest DIR1 DIR2: both replicas print the same, non-empty digest.
same_digest() {
    d1=$(digest_of "$1")
    d2=$(digest_of "$2")
    [ -n "$d1" ] && [ "$d1" = "$d2" ]
}

# digest_is DIR DIGEST: the replica still prints DIGEST (which is not empty).
digest_is() {
    [ -n "$2" ] && [ "$(digest_of "$1")" = "$2" ]
}

# corrupt SRC DST: DST is SRC with the byte in the middle flipped (DST is empty if SRC is
# missing or empty, which the import must refuse just the same).
corrupt() {
    : >"$2"
    [ -s "$1" ] || return 0
    python3 -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0xff
open(sys.argv[2], "wb").write(b)
' "$1" "$2"
}

# alter_change SRC DST [INDEX]: DST is the batch SRC (uncompressed, README.md "Formats") with a
# byte in the middle of the sealed body of its change INDEX (default 0, the first; -1 the last)
# flipped, and the frame's checksum recomputed, so only the change's seal and signature can
# tell. DST is empty if SRC is not such a batch.
alter_change() {
    : >"$2"
    ALTER_INDEX=${3:-0} \
    python3 -c '
import hashlib, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
def item(p):
    t = b[p]
    if t <= 0x7f or t >= 0xe0 or t in (0xc0, 0xc2, 0xc3): return p + 1, None
    if 0x90 <= t <= 0x9f: return arr(p + 1, t & 15)
    if t in (0xdc, 0xdd):
        w = 2 if t == 0xdc else 4
        return arr(p + 1 + w, int.from_bytes(b[p + 1:p + 1 + w], "big"))
    if 0xa0 <= t <= 0xbf: return p + 1 + (t & 31), None
    for tags, w in (((0xc4, 0xd9), 1), ((0xc5, 0xda), 2), ((0xc6, 0xdb), 4)):
        if t in tags:
            n = int.from_bytes(b[p + 1:p + 1 + w], "big")
            return p + 1 + w + n, (p + 1 + w, p + 1 + w + n)
    w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[t]
    return p + 1 + w, None
def arr(p, n):
    out = []
    for _ in range(n):
        p, v = item(p)
        out.append(v)
    return p, out
if b[:4] != b"RPLB" or b[5] & 1: sys.exit(1)
_, body = item(6)
import os
_, change = item(body[3][int(os.environ["ALTER_INDEX"])][0])  # [..., nonce, sealed, sig]
s, e = change[9]
b[(s + e) // 2] ^= 0x01
b[-32:] = hashlib.blake2b(bytes(b[:-32]), digest_size=32).digest()
open(sys.argv[2], "wb").write(b)
' "$1" "$2"
}

# exchange DIR1 DIR2: each replica gets what the other has (vv, export --since-file, import).
exchange() {
    $limit $bin --dir "$1" vv -o "$T/x1.vv" 2>/dev/null &&
        $limit $bin --dir "$2" vv -o "$T/x2.vv" 2>/dev/null &&
        $limit $bin --dir "$1" export --since-file "$T/x2.vv" -o "$T/x1to2.bundle" 2>/dev/null &&
        $limit $bin --dir "$2" export --since-file "$T/x1.vv" -o "$T/x2to1.bundle" 2>/dev/null &&
        $limit $bin --dir "$1" import "$T/x2to1.bundle" >/dev/null 2>&1 &&
        $limit $bin --dir "$2" import "$T/x1to2.bundle" >/dev/null 2>&1
}

# invite_file DESC ADMIN FILE DEVICE [ROLE]: ADMIN's replica enrolls DEVICE with
# `invite --file FILE`; sets code to the one-time code it prints (the last line of stdout).
invite_file() {
    run --dir "$2" invite --file "$3" --device "$4" ${5:+--role "$5"}
    code=$(printf '%s\n' "$out" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$code" ]; then pass "$1"; else fail "$1"; fi
}

# lines_sorted: the last stdout, its lines sorted and joined by '|'.
lines_sorted() {
    printf '%s\n' "$out" | LC_ALL=C sort | tr '\n' '|'
}

# ---- help, init ---------------------------------------------------------------------------------

run --help
check "--help prints usage" [ "$rc" -eq 0 ]
check "--help mentions every command" has "conflicts"
ok "help command" help

ok "init a new office" --dir "$A" init --office "Main Street Clinic" --device ws-a
check "init names the directory" has "$A"
refused "init twice is refused" 1 --dir "$A" init
check "init twice says it is already a replica" has_err "already"

run --dir "$A" status --json
check "status --json parses and names the office and device" \
    json 'd["office_name"] == "Main Street Clinic" and d["device_name"] == "ws-a" and len(d["office_id"]) == 32 and len(d["actor"]) == 16'
ok "status prints for people" --dir "$A" status
check "status shows the office name" has "Main Street Clinic"

# ---- put / get ----------------------------------------------------------------------------------

ok "put every value type in one change" --dir "$A" put patients/8812 \
    name=Ada age:int=36 debt:int=-42 vip:bool=true inactive:bool=false weight:double=61.5 \
    fax:null photo:bytes=00ff10 "note=call back = yes" --user alice
same "get a string" "Ada" --dir "$A" get patients/8812 name
same "get an int" "36" --dir "$A" get patients/8812 age
same "get a negative int" "-42" --dir "$A" get patients/8812 debt
same "get a bool (true)" "true" --dir "$A" get patients/8812 vip
same "get a bool (false)" "false" --dir "$A" get patients/8812 inactive
same "get a double" "61.5" --dir "$A" get patients/8812 weight
same "get a null" "(null)" --dir "$A" get patients/8812 fax
same "get bytes" "0x00ff10" --dir "$A" get patients/8812 photo
same "get a string holding '=' and spaces" "call back = yes" --dir "$A" get patients/8812 note

run --dir "$A" get patients/8812 age --json
check "get FIELD --json keeps the int type" \
    json 'd == {"key": "patients/8812", "field": "age", "kind": "register", "value": 36, "conflict": False, "kind_clash": False}'
run --dir "$A" get patients/8812 --json
check "get --json shows the whole record with typed values" json '
d["key"] == "patients/8812" and d["delete_conflict"] is False and
all(f["kind"] == "register" and f["conflict"] is False for f in d["fields"].values()) and
[d["fields"][k]["value"] for k in ("name", "age", "vip", "inactive", "weight", "fax", "photo")]
    == ["Ada", 36, True, False, 61.5, None, {"bytes": "00ff10"}]'
run --dir "$A" get patients/8812
check "get shows the record for people" has "weight   = 61.5"

ok "options may come before the command" --dir "$A" put patients/8813 name=Bob --user alice
same "options may come after the arguments" "Bob" get patients/8813 name --dir "$A"
export REPLICA_DIR="$A"
run get patients/8813 name
unset REPLICA_DIR
check_sh "REPLICA_DIR picks the directory" '[ "$rc" -eq 0 ] && [ "$out" = Bob ]'
ok "put a double with an exponent" --dir "$A" put patients/8813 score:double=1e-3
same "a double reads back in its shortest form" "0.001" --dir "$A" get patients/8813 score
ok "a field name holding ':' with :string" --dir "$A" put patients/8813 time:of:day:string=09:30
same "the field holding ':' reads back" "09:30" --dir "$A" get patients/8813 time:of:day
ok "a 64-byte field name is accepted" --dir "$A" put patients/8813 "$(printf 'f%063d' 0)=x"

# ---- ls -----------------------------------------------------------------------------------------

ok "put appointments" --dir "$A" put appts/0900 patient=8812 doctor=Lee --user alice
ok "put appointment 0930" --dir "$A" put appts/0930 patient=8813 doctor=Kim --user alice
ok "put appointment 1000" --dir "$A" put appts/1000 patient=8814 doctor=Lee --user alice
run --dir "$A" ls appts
check "ls lists every record, in key order, one line each" \
    [ "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" = "appts/0900 appts/0930 appts/1000 " ]
check "ls shows the fields" has "doctor=Kim"
run --dir "$A" ls appts --prefix 09
check "ls --prefix keeps only matching records" \
    [ "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" = "appts/0900 appts/0930 " ]
run --dir "$A" ls appts --prefix 09 --json
check "ls --json parses" json '
d["collection"] == "appts" and [r["key"] for r in d["records"]] == ["appts/0900", "appts/0930"]
and d["records"][1]["fields"]["doctor"]["value"] == "Kim"'
run --dir "$A" ls nothing-here --json
check "ls of an empty collection gives an empty list" json 'd["records"] == []'

# ---- del ----------------------------------------------------------------------------------------

ok "del a field" --dir "$A" del patients/8812 fax --user bob
refused "get of the deleted field fails" 1 --dir "$A" get patients/8812 fax
same "the other fields stay" "Ada" --dir "$A" get patients/8812 name
ok "del a record" --dir "$A" del appts/1000 --user bob
refused "get of the deleted record fails" 1 --dir "$A" get appts/1000
refused "get of a field of the deleted record fails" 1 --dir "$A" get appts/1000 doctor
run --dir "$A" ls appts --json
check "ls no longer shows the deleted record" \
    json '[r["key"] for r in d["records"]] == ["appts/0900", "appts/0930"]'
refused "del of a missing record fails" 1 --dir "$A" del appts/1234

# ---- history ------------------------------------------------------------------------------------

run --dir "$A" history patients/8812
check "history shows who made each change" [ "$rc" -eq 0 ]
check "history names alice" has "alice"
check "history names bob (the delete)" has "bob"
run --dir "$A" history patients/8812 --json
check "history --json parses: users, actors, ISO times, ops" json '
d["key"] == "patients/8812" and [c["user"] for c in d["changes"]] == ["alice", "bob"] and
all(len(c["actor"]) == 16 and c["time"].endswith("Z") and c["time"][4] == "-" for c in d["changes"]) and
{"op": "set", "field": "name", "kind": "register", "value": "Ada"} in d["changes"][0]["ops"] and
any(o["op"] == "del" and o["field"] == "fax" for o in d["changes"][1]["ops"])'
run --dir "$A" history appts/1000 --json
check "history of a deleted record shows the delete" \
    json 'any(o["op"] == "clear" or (o["op"] == "del" and o["field"] == "") for o in d["changes"][-1]["ops"])'

# ---- two replicas of one office -------------------------------------------------------------------

ok "export everything" --dir "$A" export -o "$T/all.bundle"
check_sh "export wrote the file (and no .tmp left)" '[ -s "$T/all.bundle" ] && [ ! -e "$T/all.bundle.tmp" ]'
invite_file "A (the office's admin) enrolls ws-b with a provisioning file" "$A" "$T/b.prov" ws-b
check "...printing the one-time code, XXXX-XXXX-XXXX" \
    eval 'printf "%s" "$code" | grep -Eq "^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$"'
check "...and telling to carry the file and give the code separately" \
    eval 'has_err "$T/b.prov" && has_err "separately"'
check_sh "the provisioning file is mode 0600" \
    '[ "$(stat -c %a "$T/b.prov" 2>/dev/null)" = 600 ]'
code_b=$code
run --dir "$T/nb" init --from "$T/b.prov" --code "$code_b" --device ws-other
check_sh "init --from with another --device than the file enrolls is refused" \
    '[ "$rc" -eq 1 ] && has_err "ws-b" && [ ! -e "$T/nb" ]'
ok "init --from the file with its code joins the office" \
    --dir "$B" init --from "$T/b.prov" --code "$code_b" --device ws-b
check "...as a member" has "role    member"
run --dir "$A" status --json
office_a=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["office_id"])' <"$T/out" 2>/dev/null)
actor_a=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["actor"])' <"$T/out" 2>/dev/null)
run --dir "$B" status --json
check "the new replica has the office's id, its own name and actor" \
    json "d['office_id'] == '$office_a' and d['device_name'] == 'ws-b' and d['actor'] != '$actor_a'"
run --dir "$B" devices --json
check "the new replica lists itself, enrolled by the admin" \
    json "sorted((x['name'], x['role'], x['self']) for x in d['devices']) == [('ws-a', 'admin', False), ('ws-b', 'member', True)]"
digest=$(digest_of "$A")
check_sh "digest is 64 hex digits" '[ ${#digest} -eq 64 ] && [ -z "$(printf %s "$digest" | tr -d 0-9a-f)" ]'
same "B reads what A wrote" "Ada" --dir "$B" get patients/8812 name

ok "A edits the phone" --dir "$A" put patients/8812 phone=555-0100 --user alice
ok "B edits the same phone at the same time" --dir "$B" put patients/8812 phone=555-0199 --user bob
ok "B writes its version vector" --dir "$B" vv -o "$T/b.vv"
ok "A writes its version vector" --dir "$A" vv -o "$T/a.vv"
ok "A exports what B lacks" --dir "$A" export --since-file "$T/b.vv" -o "$T/a2b.bundle"
ok "B exports what A lacks" --dir "$B" export --since-file "$T/a.vv" -o "$T/b2a.bundle"
run --dir "$A" import "$T/b2a.bundle" --json
check "A imports B's change" json 'd["applied"] >= 1 and d["forks"] == 0 and d["pending"] == 0'
run --dir "$B" import "$T/a2b.bundle"
check "B imports A's change" [ "$rc" -eq 0 ]
check "import prints its stats" has "applied"

check "both replicas converge to one digest" same_digest "$A" "$B"
for side in A B; do
    eval "dir=\$$side"
    run --dir "$dir" conflicts --json
    check "$side lists the phone conflict with both values, one winner" json '
len(d["conflicts"]) == 1 and d["conflicts"][0]["key"] == "patients/8812" and
d["conflicts"][0]["field"] == "phone" and
sorted(s["value"] for s in d["conflicts"][0]["siblings"]) == ["555-0100", "555-0199"] and
sorted(s["user"] for s in d["conflicts"][0]["siblings"]) == ["alice", "bob"] and
sum(s["winner"] for s in d["conflicts"][0]["siblings"]) == 1'
    run --dir "$dir" conflicts patients/8812
    check "$side shows the conflict for people" has "555-0199"
    run --dir "$dir" get patients/8812
    check "$side marks the field in conflict" has "conflict: 2 values"
done
phone_a=$($bin --dir "$A" get patients/8812 phone 2>/dev/null)
phone_b=$($bin --dir "$B" get patients/8812 phone 2>/dev/null)
check_sh "both show the same winner" '[ -n "$phone_a" ] && [ "$phone_a" = "$phone_b" ]'
run --dir "$A" conflicts appts/0900
check "a record without conflicts says so" has "no conflicts"

before=$(digest_of "$B")
run --dir "$B" import "$T/a2b.bundle" --json
check "importing the same bundle twice succeeds and applies nothing" \
    json 'd["applied"] == 0 and d["duplicates"] == d["changes"] and d["changes"] >= 1'
check "a repeated import leaves the digest alone" digest_is "$B" "$before"
ok "importing the full bundle again succeeds" --dir "$B" import "$T/all.bundle"
check "...and changes nothing" digest_is "$B" "$before"

corrupt "$T/all.bundle" "$T/bad.bundle"
refused "a bundle with a flipped byte is refused" 1 --dir "$B" import "$T/bad.bundle"
check "the refusal names the file" has_err "bad.bundle"
check "a refused bundle leaves the digest alone" digest_is "$B" "$before"
size=0
[ -f "$T/all.bundle" ] && size=$(wc -c <"$T/all.bundle")
head -c $((size / 2)) "$T/all.bundle" >"$T/short.bundle" 2>/dev/null
refused "a truncated bundle is refused" 1 --dir "$B" import "$T/short.bundle"
check "a truncated bundle leaves the digest alone" digest_is "$B" "$before"
: >"$T/empty.bundle"
refused "an empty bundle is refused" 1 --dir "$B" import "$T/empty.bundle"
refused "init --from a plain export is refused (only enrolled replicas import bundles)" 1 \
    --dir "$T/d" init --from "$T/all.bundle" --code "$code_b"
check "...saying it is a bundle, not a provisioning file" has_err "not a provisioning file"
check "...and creates no replica" [ ! -e "$T/d" ]
refused "init --from a damaged bundle is refused" 1 --dir "$T/d" init --from "$T/bad.bundle" --code "$code_b"
check "...and creates no replica" [ ! -e "$T/d" ]
refused "init --from without --code is a usage error" 2 --dir "$T/d" init --from "$T/b.prov"
check "...and creates no replica" [ ! -e "$T/d" ]

# ---- provisioning files: the one-time code, tampering, admins only ---------------------------------

invite_file "A enrolls ws-p by file" "$A" "$T/p.prov" ws-p
code_p=$code
wrong=$(printf '%s' "$code_p" | sed 's/^\(....\)-\(....\)/\2-\1/')  # groups swapped
refused "init --from with a wrong code is refused" 1 --dir "$T/p" init --from "$T/p.prov" --code "$wrong"
check "...saying wrong code or damaged file" has_err "wrong code or damaged file"
check "...and creates nothing" [ ! -e "$T/p" ]
mkdir "$T/pe"
refused "...also into an existing empty directory" 1 --dir "$T/pe" init --from "$T/p.prov" --code "$wrong"
check "...which stays empty" [ -z "$(ls -A "$T/pe")" ]
refused "a malformed code is a usage error" 2 --dir "$T/p" init --from "$T/p.prov" --code 12
check "...and creates nothing" [ ! -e "$T/p" ]
corrupt "$T/p.prov" "$T/bad.prov"
refused "a provisioning file with a flipped byte is refused" 1 \
    --dir "$T/p" init --from "$T/bad.prov" --code "$code_p"
check "...as a wrong code or damaged file" has_err "wrong code or damaged file"
check "...and creates nothing" [ ! -e "$T/p" ]
head -c 100 "$T/p.prov" >"$T/short.prov" 2>/dev/null
refused "a truncated provisioning file is refused" 1 \
    --dir "$T/p" init --from "$T/short.prov" --code "$code_p"
check "...and creates nothing" [ ! -e "$T/p" ]
ok "the code is not case- or dash-sensitive" \
    --dir "$T/p" init --from "$T/p.prov" --code "$(printf '%s' "$code_p" | tr -d - | tr '[:upper:]' '[:lower:]')"
refused "invite --file never overwrites a file" 1 --dir "$A" invite --file "$T/p.prov" --device ws-q
check "...says so" has_err "never overwritten"
run --dir "$A" devices --json
check "...and enrolled nobody" json "'ws-q' not in [x['name'] for x in d['devices']]"
refused "invite --file of a name already enrolled is refused" 1 --dir "$A" invite --file "$T/p2.prov" --device ws-p
check "...and writes no file" [ ! -e "$T/p2.prov" ]
refused "a member cannot enroll devices" 1 --dir "$B" invite --file "$T/m.prov" --device ws-m
check "...saying only an admin does" has_err "only an admin"
check "...and writes no file" [ ! -e "$T/m.prov" ]
invite_file "A enrolls an admin by file (--role admin)" "$A" "$T/adm.prov" ws-adm admin
ok "...who joins" --dir "$T/adm" init --from "$T/adm.prov" --code "$code"
check "...as an admin" has "role    admin"
invite_file "an admin so enrolled enrolls devices too" "$T/adm" "$T/adm2.prov" ws-adm2
run --dir "$T/adm" devices --json
check "devices lists the roles the admins gave" json "
sorted((x['name'], x['role']) for x in d['devices'] if x['name'] in ('ws-a', 'ws-b', 'ws-adm', 'ws-adm2'))
    == [('ws-a', 'admin'), ('ws-adm', 'admin'), ('ws-adm2', 'member'), ('ws-b', 'member')]"
refused "invite --file without --device is a usage error" 2 --dir "$A" invite --file "$T/m.prov"
refused "invite --file with a bad --role is a usage error" 2 --dir "$A" invite --file "$T/m.prov" --device ws-m --role boss
refused "invite --device without --file is a usage error" 2 --dir "$A" invite --device ws-m
refused "invite --file --ttl is a usage error" 2 --dir "$A" invite --file "$T/m.prov" --device ws-m --ttl 5m
check "no file was written by a usage error" [ ! -e "$T/m.prov" ]
corrupt "$T/b.vv" "$T/bad.vv"
refused "export --since-file with a damaged vv is refused" 1 --dir "$A" export --since-file "$T/bad.vv" -o "$T/x.bundle"

ok "init another office" --dir "$C" init --office Elsewhere
ok "it writes a record" --dir "$C" put patients/1 name=Zed
ok "export the other office" --dir "$C" export -o "$T/c.bundle"
refused "a bundle from another office is refused" 1 --dir "$B" import "$T/c.bundle"
check "...saying so" has_err "another office"
check "another office's bundle leaves the digest alone" digest_is "$B" "$before"
ok "A writes a change B lacks" --dir "$A" put patients/8815 name=Eve --user alice
ok "B writes its vv" --dir "$B" vv -o "$T/b3.vv"
ok "A exports the change for B" --dir "$A" export --since-file "$T/b3.vv" -o "$T/a2b3.bundle"
alter_change "$T/a2b3.bundle" "$T/altered.bundle"
check_sh "a copy altered in the middle of the change, checksum recomputed" '[ -s "$T/altered.bundle" ]'
refused "...is refused: its seal and signature do not verify" 1 --dir "$B" import "$T/altered.bundle"
check "...saying it is not signed by a member, or altered" has_err "not signed by a member of this office, or altered"
check "...and leaves the digest alone" digest_is "$B" "$before"
refused "...and B does not have the change" 1 --dir "$B" get patients/8815 name
run --dir "$B" import "$T/a2b3.bundle" --json
check "the unaltered bundle is applied" json 'd["applied"] == 1 and d["forks"] == 0'
same "...and B reads the change" "Eve" --dir "$B" get patients/8815 name
before=$(digest_of "$B")
run --dir "$C" vv -o "$T/c.vv"
refused "export for another office's vv is refused" 1 --dir "$A" export --since-file "$T/c.vv" -o "$T/x.bundle"

# ---- counters, sets, logs ------------------------------------------------------------------------

ok "incr makes a counter" --dir "$A" incr visits/8812 count --user alice
same "incr without N adds 1" "1" --dir "$A" get visits/8812 count
ok "incr -2: a negative amount is an argument, not an option" --dir "$A" incr visits/8812 count -2 --user bob
same "the counter went down by 2" "-1" --dir "$A" get visits/8812 count
ok "incr +5" --dir "$A" incr visits/8812 count +5
check "incr reports the new total" has "total 4"
ok "incr after -- works too" --dir "$A" incr visits/8812 count -- -1
ok "incr back up" --dir "$A" incr visits/8812 count 1
run --dir "$A" get visits/8812 count --json
check "get COUNTER --json: kind and total" json '
d == {"key": "visits/8812", "field": "count", "kind": "counter", "value": 4, "conflict": False, "kind_clash": False}'
run --dir "$A" get visits/8812
check "get shows the counter with its kind" has "count (counter) = 4"

ok "add two members to a set in one change" --dir "$A" add patients/8812 allergies penicillin latex --user alice
ok "add an int member (FIELD:int VALUE)" --dir "$A" add patients/8812 codes:int 42
ok "add a member that is already there" --dir "$A" add patients/8812 allergies latex
run --dir "$A" get patients/8812 allergies
check_sh "get SET prints its members, one per line" '[ "$rc" -eq 0 ] && [ "$(lines_sorted)" = "latex|penicillin|" ]'
ok "rm a member" --dir "$A" rm patients/8812 allergies latex --user bob
same "the member is gone" "penicillin" --dir "$A" get patients/8812 allergies
refused "rm of a member that is not there" 1 --dir "$A" rm patients/8812 allergies pollen
refused "rm of a string when the member is an int" 1 --dir "$A" rm patients/8812 codes 42
check "...says which type it looked for" has_err "string"

ok "append a log entry" --dir "$A" append patients/8812 calls "called, left a message" --user alice
ok "append another" --dir "$A" append patients/8812 calls "called back: all fine" --user bob
run --dir "$A" get patients/8812 calls
check_sh "get LOG prints its entries in order, one per line, with who" '[ "$rc" -eq 0 ] &&
    [ "$(printf "%s\n" "$out" | wc -l)" -eq 2 ] &&
    [ "${out%%called back: all fine}" != "$out" ] && [ "$(printf "%s\n" "$out" | head -n 1 | grep -c "alice  called, left a message")" -eq 1 ]'

run --dir "$A" get patients/8812 --json
check "get --json: kinds and values of a set, a log and a register" json 'all((
f["allergies"] == {"kind": "set", "value": ["penicillin"], "conflict": False, "siblings": 1, "kind_clash": False} and
f["codes"]["kind"] == "set" and f["codes"]["value"] == [42] and
f["calls"]["kind"] == "log" and [e["value"] for e in f["calls"]["value"]] == ["called, left a message", "called back: all fine"] and
[e["user"] for e in f["calls"]["value"]] == ["alice", "bob"] and
all(list(e) == ["time", "hlc", "actor", "seq", "user", "value"] and len(e["actor"]) == 16 and
    e["time"].endswith("Z") and isinstance(e["hlc"], int) and isinstance(e["seq"], int) for e in f["calls"]["value"]) and
f["name"]["kind"] == "register" and f["name"]["value"] == "Ada")
    for f in [d["fields"]])'
run --dir "$A" get patients/8812 calls --json
check "get LOG --json gives the entries" \
    json 'd["kind"] == "log" and [e["value"] for e in d["value"]] == ["called, left a message", "called back: all fine"]'
run --dir "$A" get patients/8812
check "get shows a set's members and a log's entries" has "allergies (set) = [penicillin]"
check "...and the log's entries under it" has "called back: all fine"
run --dir "$A" ls patients
check "ls shows sets compactly" has "allergies=[penicillin]"
check "ls shows logs compactly" has "calls=(2 entries)"

refused "incr of a register is a kind error" 1 --dir "$A" incr patients/8812 name
check "...naming the field and both kinds" \
    eval 'has_err "name" && has_err "a register" && has_err "not a counter"'
refused "put to a counter is a kind error" 1 --dir "$A" put visits/8812 count=3
check "...naming both kinds" eval 'has_err "a counter" && has_err "not a register"'
refused "add to a log is a kind error" 1 --dir "$A" add patients/8812 calls x
refused "append to a set is a kind error" 1 --dir "$A" append patients/8812 allergies x
refused "rm from a counter is a kind error" 1 --dir "$A" rm visits/8812 count 1
refused "del of a set field is refused" 1 --dir "$A" del patients/8812 allergies
same "refused writes changed nothing" "4" --dir "$A" get visits/8812 count
refused "incr by a word" 2 --dir "$A" incr visits/8812 count abc
refused "incr by more than int64" 2 --dir "$A" incr visits/8812 count 99999999999999999999
refused "incr with an extra argument" 2 --dir "$A" incr visits/8812 count 1 2
refused "incr takes no --json" 2 --dir "$A" incr visits/8812 count --json
refused "add without a value" 2 --dir "$A" add patients/8812 allergies
refused "add FIELD=VALUE (the value is its own argument)" 2 --dir "$A" add patients/8812 allergies=x
refused "add a bad :int value" 2 --dir "$A" add patients/8812 codes:int x
refused "add a null with a value" 2 --dir "$A" add patients/8812 flags:null x
refused "append with an unknown type" 2 --dir "$A" append patients/8812 calls:text hi

run --dir "$A" history visits/8812
check "history shows incr +N" has "incr count +1"
check "history shows incr -N" has "incr count -2"
run --dir "$A" history patients/8812
check "history shows add, rm and append" \
    eval 'has "add allergies: latex" && has "rm allergies: latex" && has "append calls: called back: all fine"'
run --dir "$A" history patients/8812 --json
check "history --json: the new op types with their values" json '
any({"op": "add", "field": "allergies", "kind": "set", "value": "latex"} in c["ops"] for c in d["changes"]) and
any({"op": "remove", "field": "allergies", "kind": "set", "value": "latex"} in c["ops"] for c in d["changes"]) and
any({"op": "add", "field": "codes", "kind": "set", "value": 42} in c["ops"] for c in d["changes"]) and
any({"op": "append", "field": "calls", "kind": "log", "value": "called back: all fine"} in c["ops"] for c in d["changes"])'
run --dir "$A" history visits/8812 --json
check "history --json: incr ops carry the amount" json '
[o["value"] for c in d["changes"] for o in c["ops"] if o["op"] == "incr"] == [1, -2, 5, -1, 1]'

# Concurrent edits on A and B, then one exchange.
check "A and B exchange what they have" exchange "$A" "$B"
check "...and agree" same_digest "$A" "$B"
ok "A adds 10 to the counter" --dir "$A" incr visits/8812 count 10
ok "B takes 3 off it at the same time" --dir "$B" incr visits/8812 count -3
ok "B adds 1" --dir "$B" incr visits/8812 count
ok "A removes penicillin" --dir "$A" rm patients/8812 allergies penicillin
ok "B adds penicillin at the same time" --dir "$B" add patients/8812 allergies penicillin
ok "A appends to the log" --dir "$A" append patients/8812 calls "A: fax sent"
ok "B appends at the same time" --dir "$B" append patients/8812 calls "B: nurse called"
ok "A starts 'balance' as a counter" --dir "$A" incr patients/8812 balance 5
ok "B starts 'balance' as a register at the same time" --dir "$B" put patients/8812 balance=paid
check "A and B exchange again" exchange "$A" "$B"
check "...and converge to one digest" same_digest "$A" "$B"
for side in A B; do
    eval "dir=\$$side"
    same "$side: the counter is the sum of every increment" "12" --dir "$dir" get visits/8812 count
    same "$side: the concurrent add wins over the remove" "penicillin" --dir "$dir" get patients/8812 allergies
    run --dir "$dir" get patients/8812 --json
    printf '%s\n' "$out" >"$T/$side.json"
    check "$side: both appends are in the log" json '
sorted(e["value"] for e in d["fields"]["calls"]["value"][-2:]) == ["A: fax sent", "B: nurse called"] and
len(d["fields"]["calls"]["value"]) == 4'
    check "$side: a kind clash keys each field name:kind" json '
d["fields"]["balance:counter"]["value"] == 5 and d["fields"]["balance:counter"]["kind_clash"] is True and
d["fields"]["balance:register"]["value"] == "paid" and d["fields"]["balance:register"]["conflict"] is True and
"balance" not in d["fields"]'
    run --dir "$dir" get patients/8812
    check "$side: get shows both fields of the clash" eval 'has "balance (counter)" && has "balance (register)"'
    same "$side: get NAME:KIND reads one field of a clash" "5" --dir "$dir" get patients/8812 balance:counter
    run --dir "$dir" conflicts patients/8812 --json
    check "$side: conflicts lists the kind clash" json '
sorted(c["kind"] for c in d["conflicts"] if c["field"] == "balance" and c["kind_clash"]) == ["counter", "register"]'
    run --dir "$dir" conflicts patients/8812
    check "$side: conflicts shows the clash for people" has "balance (counter): kind clash, also a register"
done
check_sh "the log is in the same order on both replicas" \
    'python3 -c "import json,sys; a,b=(json.load(open(f))[\"fields\"][\"calls\"][\"value\"] for f in sys.argv[1:]); sys.exit(a != b)" "$T/A.json" "$T/B.json"'

# A change that arrives before the one it follows waits, and status says what for.
invite_file "A enrolls D with everything A has" "$A" "$T/d.prov" ws-d
ok "...and D joins from the file" --dir "$T/dd" init --from "$T/d.prov" --code "$code"
ok "B writes its vv" --dir "$B" vv -o "$T/b2.vv"
ok "A makes a change" --dir "$A" put patients/8890 name=Wait
ok "A exports what B lacks: that change" --dir "$A" export --since-file "$T/b2.vv" -o "$T/first.bundle"
ok "D imports it" --dir "$T/dd" import "$T/first.bundle"
ok "...and writes its vv" --dir "$T/dd" vv -o "$T/d.vv"
ok "A makes a second change" --dir "$A" incr patients/8890 visits
ok "A exports only the second one" --dir "$A" export --since-file "$T/d.vv" -o "$T/second.bundle"
ok "B imports the second change first" --dir "$B" import "$T/second.bundle"
run --dir "$B" status --json
check "status --json: waiting_for names A and the seq it needs" \
    json "d['pending'] == 1 and list(d['waiting_for']) == ['$actor_a'] and d['skewed'] == {} and d['forked'] == {}"
run --dir "$B" status
check "status says what it waits for" has "waiting for  $actor_a  up to seq"
ok "B imports the first change" --dir "$B" import "$T/first.bundle"
run --dir "$B" status --json
check "then nothing waits" json 'd["pending"] == 0 and d["waiting_for"] == {}'
same "and the second change is applied" "1" --dir "$B" get patients/8890 visits

# ---- catch-up by state: snapshots ------------------------------------------------------------------
# Office Q: a note rewritten six times leaves one value, so its state is smaller than its changes.

Q=$T/q
ok "init an office for snapshots" --dir "$Q" init --office Snapshots --device ws-q
invite_file "Q enrolls ws-q3 while it holds nothing yet" "$Q" "$T/q3.prov" ws-q3
code_q3=$code
nbad=0
for i in 1 2 3 4 5 6; do
    run --dir "$Q" put notes/1 "text=$(python3 -c 'import os; print(os.urandom(600).hex())')" --user alice
    [ "$rc" -eq 0 ] || nbad=$((nbad + 1))
done
check_sh "Q rewrites a long note six times" '[ "$nbad" -eq 0 ]'
ok "Q writes a short record" --dir "$Q" put notes/2 title=Hello --user alice
note_q=$($bin --dir "$Q" get notes/1 text 2>/dev/null)

ok "export (default) for a new workstation" --dir "$Q" export -o "$T/q.bundle"
check "...writes a snapshot, as it is smaller than the changes" has_err "a snapshot of the whole state"
check "...and says how many bytes to which file" has_err "bytes to $T/q.bundle"
ok "export --changes" --dir "$Q" export --changes -o "$T/q-changes.bundle"
check "...writes changes" eval 'has_err ": changes" && ! has_err "snapshot"'
check_sh "the snapshot is smaller than the changes" \
    '[ -s "$T/q.bundle" ] && [ "$(wc -c <"$T/q.bundle")" -lt "$(wc -c <"$T/q-changes.bundle")" ]'
ok "export --state" --dir "$Q" export --state -o "$T/q-state.bundle"
check "...writes a snapshot" has_err "a snapshot of the whole state"
check_sh "...of the size the default chose (sealed anew: not the same bytes)" \
    '[ "$(wc -c <"$T/q.bundle")" -eq "$(wc -c <"$T/q-state.bundle")" ]'
check_sh "no .tmp file is left" '[ ! -e "$T/q.bundle.tmp" ] && [ ! -e "$T/q-state.bundle.tmp" ] && [ ! -e "$T/q-changes.bundle.tmp" ]'
ok "Q writes its vv" --dir "$Q" vv -o "$T/q.vv"
ok "export --since-file a vv that lacks nothing" --dir "$Q" export --since-file "$T/q.vv" -o "$T/q-none.bundle"
check "...writes (no) changes, not a snapshot" has_err ": changes"

# A new workstation from the snapshot.
Q2=$T/q2
invite_file "Q enrolls ws-q2 by file" "$Q" "$T/q2.prov" ws-q2
ok "init --from the file joins the office" --dir "$Q2" init --from "$T/q2.prov" --code "$code"
check "...and says it merged a snapshot" has "snapshot of"
check "it holds the same records (and its own device record)" \
    eval '[ "$($bin --dir "$Q" ls notes)" = "$($bin --dir "$Q2" ls notes)" ]'
same "...and reads the note" "$note_q" --dir "$Q2" get notes/1 text
run --dir "$Q" status --json
office_q=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["office_id"])' <"$T/out" 2>/dev/null)
run --dir "$Q2" status --json
check "...of the same office, as its own device, with no change of its own yet" \
    json "d['office_id'] == '$office_q' and d['device_name'] == 'ws-q2' and d['changes'] == 0"

run --dir "$Q2" history notes/1
check "history says it is partial on a replica that caught up from a snapshot" \
    eval '[ "$rc" -eq 0 ] && has "caught up from a snapshot"'
run --dir "$Q2" history notes/1 --json
check "history --json: partial is true, and the changes are not here" \
    json 'd["key"] == "notes/1" and d["partial"] is True and d["changes"] == []'
run --dir "$Q" history notes/1 --json
check "history --json: partial is false where the log has everything" \
    json 'd["partial"] is False and len(d["changes"]) == 6'
run --dir "$Q" history notes/1
check "history does not say partial there" eval '[ "$rc" -eq 0 ] && ! has "snapshot"'

refused "export --changes from a replica that caught up by state is refused" 1 \
    --dir "$Q2" export --changes -o "$T/q2.bundle"
check "...saying it holds them only as state and to drop --changes" \
    eval 'has_err "only as state" && has_err "drop --changes"'
check "...and writes no file" [ ! -e "$T/q2.bundle" ]
ok "export (default) from it writes a snapshot instead" --dir "$Q2" export -o "$T/q2.bundle"
check "...says so" has_err "a snapshot of the whole state"
ok "export --changes for a replica that lacks nothing works" \
    --dir "$Q2" export --changes --since-file "$T/q.vv" -o "$T/q2-none.bundle"

before=$(digest_of "$Q2")
run --dir "$Q2" import "$T/q-changes.bundle" --json
check "the changes a snapshot covered, sent again, are duplicates, not forks" \
    json 'd["snapshot"] is False and d["changes"] == 7 and d["duplicates"] == 7 and d["applied"] == 0 and d["forks"] == 0'
check "...and change nothing" digest_is "$Q2" "$before"

ok "Q2 writes a change of its own" --dir "$Q2" put notes/3 title=From-Q2 --user bob
ok "Q2 exports it as changes for Q" --dir "$Q2" export --changes --since-file "$T/q.vv" -o "$T/q2-own.bundle"
run --dir "$Q" import "$T/q2-own.bundle" --json
check "Q applies it" json 'd["snapshot"] is False and d["applied"] == 1 and d["entries"] == 0'
check "Q and Q2 converge" same_digest "$Q" "$Q2"

# A snapshot into an empty replica (made from a bundle that holds nothing) with `import`.
Q3=$T/q3
ok "init --from the file made before Q wrote makes an empty replica of the office" \
    --dir "$Q3" init --from "$T/q3.prov" --code "$code_q3"
run --dir "$Q3" ls notes --json
check "...holding no note" json 'd["records"] == []'
run --dir "$Q3" import "$T/q-state.bundle" --json
check "import of a snapshot into an empty replica: entries counted" \
    json 'd["file"].endswith("q-state.bundle") and d["snapshot"] is True and d["entries"] >= 2 and d["changes"] == 0 and d["forks"] == 0 and d["pending"] == 0'
run --dir "$Q" export --state -o "$T/q-state2.bundle"
run --dir "$Q3" import "$T/q-state2.bundle"
check "import of a snapshot prints 'snapshot of N entries'" \
    eval '[ "$rc" -eq 0 ] && has "imported $T/q-state2.bundle: snapshot of " && has " entries: "'
check "...and the replica holds Q's records" \
    eval '[ "$($bin --dir "$Q" ls notes)" = "$($bin --dir "$Q3" ls notes)" ]'
before=$(digest_of "$Q3")
run --dir "$Q3" import "$T/q-state2.bundle" --json
check "importing a snapshot twice is harmless" json 'd["snapshot"] is True and d["forks"] == 0'
check "...and changes nothing" digest_is "$Q3" "$before"

# A snapshot into a replica that has changes of its own, concurrent with the sender's.
Q4=$T/q4
invite_file "Q enrolls ws-q4 by file" "$Q" "$T/q4.prov" ws-q4
ok "Q4 joins from the file" --dir "$Q4" init --from "$T/q4.prov" --code "$code"
ok "Q4 edits the title" --dir "$Q4" put notes/2 title=Q4-title --user carol
ok "Q edits it at the same time" --dir "$Q" put notes/2 title=Q-title --user alice
ok "Q exports a snapshot" --dir "$Q" export --state -o "$T/q-state3.bundle"
run --dir "$Q4" import "$T/q-state3.bundle" --json
check "Q4 merges the snapshot" json 'd["snapshot"] is True and d["entries"] >= 3 and d["forks"] == 0'
ok "Q writes its vv" --dir "$Q" vv -o "$T/q.vv"
ok "Q4 exports what Q lacks" --dir "$Q4" export --since-file "$T/q.vv" -o "$T/q4.bundle"
check "...as changes (its log has them)" has_err ": changes"
ok "Q imports them" --dir "$Q" import "$T/q4.bundle"
check "Q and Q4 converge" same_digest "$Q" "$Q4"
run --dir "$Q4" conflicts notes/2 --json
check "the concurrent titles are both kept" json '
sorted(s["value"] for s in d["conflicts"][0]["siblings"]) == ["Q-title", "Q4-title"]'
run --dir "$Q4" history notes/2 --json
check "Q4's history is partial now, but keeps its own changes" json '
d["partial"] is True and any(c["user"] == "carol" for c in d["changes"])'

# A snapshot that contradicts what a replica knows of a device: a workstation restored from a
# backup (in place, so it cannot tell) writes again under change numbers it had already used.
QF=$T/qf
invite_file "Q enrolls ws-qf by file" "$Q" "$T/qf.prov" ws-qf
ok "QF joins the office" --dir "$QF" init --from "$T/qf.prov" --code "$code"
ok "QF writes change 1" --dir "$QF" put notes/9 x=1
cp -r "$QF" "$T/qf.bak"
ok "QF writes change 2" --dir "$QF" put notes/9 x=2
ok "QF exports it for Q" --dir "$QF" export --since-file "$T/q.vv" -o "$T/qf.bundle"
ok "Q imports QF's changes" --dir "$Q" import "$T/qf.bundle"
cp "$T/qf.bak/data.mdb" "$QF/data.mdb"
ok "QF, restored in place from the backup, writes another change 2" --dir "$QF" put notes/9 x=3
ok "QF exports a snapshot" --dir "$QF" export --state -o "$T/qf.snap"
before=$(digest_of "$Q")
refused "a snapshot that forks a device's history is refused" 1 --dir "$Q" import "$T/qf.snap"
check "...naming it a fork and saying nothing was imported" \
    eval 'has_err "forked" && has_err "nothing was imported"'
check "...leaving the state alone" digest_is "$Q" "$before"
run --dir "$Q" status --json
check "...and status names the forked device" json 'len(d["forked"]) == 1'

corrupt "$T/q-state.bundle" "$T/bad.snap"
refused "a snapshot with a flipped byte is refused" 1 --dir "$Q" import "$T/bad.snap"
check "...leaving the state alone" digest_is "$Q" "$before"
refused "init --from a snapshot is refused (only enrolled replicas import bundles)" 1 \
    --dir "$T/q5" init --from "$T/q-state.bundle" --code "$code_q3"
check "...and creates no replica" [ ! -e "$T/q5" ]
ok "export a snapshot of another office" --dir "$C" export --state -o "$T/c.snap"
refused "a snapshot from another office is refused" 1 --dir "$Q" import "$T/c.snap"
check "...saying so" has_err "another office"
check "...leaving the state alone" digest_is "$Q" "$before"

refused "export --changes --state is a usage error" 2 --dir "$Q" export --changes --state -o "$T/x.bundle"
refused "export --state --since-file is a usage error" 2 \
    --dir "$Q" export --state --since-file "$T/q.vv" -o "$T/x.bundle"
refused "export --state without -o" 2 --dir "$Q" export --state
refused "import takes no --changes" 2 --dir "$Q" import "$T/q.bundle" --changes
refused "init takes no --state" 2 --dir "$T/q6" init --state
check "no bundle was written by a usage error" [ ! -e "$T/x.bundle" ]

# ---- revocation: a lost or stolen workstation --------------------------------------------------
# Office V: admin ws-va; members ws-vb, ws-vc (revoked by name), ws-vd (revoked by id).

V=$T/v
ok "init an office for revocation" --dir "$V" init --office Revocation --device ws-va
for n in b c d; do
    invite_file "V enrolls ws-v$n" "$V" "$T/v$n.prov" "ws-v$n"
    ok "ws-v$n joins from the file" --dir "$T/v$n" init --from "$T/v$n.prov" --code "$code"
done
ok "V writes a record" --dir "$V" put notes/1 text=hello
for n in b c d; do
    check "V and ws-v$n exchange (each learns every member)" exchange "$V" "$T/v$n"
done
ok "ws-vc writes a change before its revocation" --dir "$T/vc" put notes/c1 by=vc
check "...which V and ws-vb get" eval 'exchange "$V" "$T/vc" && exchange "$V" "$T/vb"'
run --dir "$V" status --json
members_v=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["members"])' <"$T/out" 2>/dev/null)
check "status --json counts the membership log's entries" json 'd["members"] == 4 and d["refused"] == 0'
run --dir "$T/vd" devices --json
id_vd=$(python3 -c 'import json,sys; print([x["id"] for x in json.load(sys.stdin)["devices"] if x["name"] == "ws-vd"][0])' <"$T/out" 2>/dev/null)
id_va=$(python3 -c 'import json,sys; print([x["id"] for x in json.load(sys.stdin)["devices"] if x["name"] == "ws-va"][0])' <"$T/out" 2>/dev/null)

refused "a member cannot revoke devices" 1 --dir "$T/vb" revoke ws-vc
check "...saying only an admin can" has_err "only an admin can revoke devices"
run --dir "$T/vb" devices
check "...and ws-vc is still enrolled" has "ws-vc"
refused "revoke of an unknown device" 1 --dir "$V" revoke ws-nobody
check "...says there is no such device" has_err "no device of this office is named 'ws-nobody'"
refused "an admin cannot revoke itself (by name)" 1 --dir "$V" revoke ws-va
check "...saying so" has_err "cannot revoke itself"
refused "...nor by id" 1 --dir "$V" revoke "$id_va"
refused "revoke without a device is a usage error" 2 --dir "$V" revoke
refused "revoke of two devices at once is a usage error" 2 --dir "$V" revoke ws-vc ws-vd
run --dir "$V" devices --json
check "nothing was revoked by the refusals" json 'len(d["devices"]) == 4'

ok "V revokes ws-vc by name" --dir "$V" revoke ws-vc
check "...printing its id" eval 'has "revoked ws-vc" && has "(device " && has "kept"'
check "...the change of it kept (the cutoff)" has "kept        1 change(s) of it"
check "...that the office key rotated to a new epoch" has "rotated to a new epoch"
check "...and that the others learn of it with the next sync" has "with the next sync"
run --dir "$V" devices --json
check "devices no longer lists it" json 'sorted(x["name"] for x in d["devices"]) == ["ws-va", "ws-vb", "ws-vd"]'
refused "revoking it again: no such device" 1 --dir "$V" revoke ws-vc
run --dir "$V" revoke "$id_vd" --json
check "V revokes ws-vd by id (--json: id, name, kept)" \
    json "d['id'] == '$id_vd' and d['name'] == 'ws-vd' and d['kept'] == 0 and d['node'] is False"
run --dir "$V" devices
check "devices lists neither" eval '[ "$rc" -eq 0 ] && ! has "ws-vc" && ! has "ws-vd" && has "ws-vb"'
run --dir "$V" status --json
check "status --json: two more membership entries" json "d['members'] == $members_v + 2"
run --dir "$V" status
check "status shows the membership log and the refused imports" \
    eval 'has "members      6 entries in the membership log" && has "refused      0 import(s)"'

# The stolen workstation does not know; what it writes now is refused.
ok "ws-vc (revoked, not knowing it) writes a change" --dir "$T/vc" put notes/c2 by=stolen
ok "ws-vb writes its vv" --dir "$T/vb" vv -o "$T/vb.vv"
ok "...and ws-vc exports it for ws-vb" --dir "$T/vc" export --since-file "$T/vb.vv" -o "$T/vc-late.bundle"
ok "ws-vb takes it before it learns of the revocation" --dir "$T/vb" import "$T/vc-late.bundle"
same "...and shows it" "stolen" --dir "$T/vb" get notes/c2 by
ok "V writes its vv" --dir "$V" vv -o "$T/v.vv"
ok "ws-vc exports its late change for V" --dir "$T/vc" export --since-file "$T/v.vv" -o "$T/vc2.bundle"
before=$(digest_of "$V")
run --dir "$V" import "$T/vc2.bundle" --json
check "V refuses it as a revoked device's (counted, not applied)" \
    json 'd["changes"] == 1 and d["revoked"] == 1 and d["applied"] == 0 and d["duplicates"] == 0'
check "...and is unchanged" digest_is "$V" "$before"
refused "...V does not have the change" 1 --dir "$V" get notes/c2 by
run --dir "$V" import "$T/vc2.bundle"
check "import says so for people" has "1 change(s) of a revoked device refused"
same "the change ws-vc made before its revocation stays" "vc" --dir "$V" get notes/c1 by

# What the office writes from now on is sealed with a key the revoked device lacks.
ok "V writes after the revocation" --dir "$V" put notes/2 text=after
ok "ws-vc writes its vv" --dir "$T/vc" vv -o "$T/vc.vv"
ok "V exports what ws-vc lacks" --dir "$V" export --since-file "$T/vc.vv" -o "$T/v2vc.bundle"
refused "the revoked device cannot import it" 1 --dir "$T/vc" import "$T/v2vc.bundle"
check "...sealed with an office key it does not hold" has_err "office key this replica does not hold"
refused "...nor check it" 1 --dir "$T/vc" import --check "$T/v2vc.bundle"
refused "...and does not have the change" 1 --dir "$T/vc" get notes/2 text

# The revocation reaches ws-vb, which had taken the late change: it rebuilds without it.
ok "V exports what ws-vb lacks (the revocations, the new key, the change)" \
    --dir "$V" export --since-file "$T/vb.vv" -o "$T/v2vb.bundle"
run --dir "$T/vb" import "$T/v2vb.bundle" --json
check "ws-vb takes the revocations and rebuilds its state" \
    json 'd["members"] == 2 and d["rebuilt"] is True'
refused "...without the revoked device's late change" 1 --dir "$T/vb" get notes/c2 by
same "...keeping its change from before" "vc" --dir "$T/vb" get notes/c1 by
same "...and reads what V wrote after (the new key)" "after" --dir "$T/vb" get notes/2 text
run --dir "$T/vb" devices --json
check "ws-vb's device list no longer has them" json 'sorted(x["name"] for x in d["devices"]) == ["ws-va", "ws-vb"]'
check "V and ws-vb converge" same_digest "$V" "$T/vb"
run --dir "$T/vb" import "$T/vc-late.bundle" --json
check "ws-vb now refuses the late change as revoked" json 'd["revoked"] == 1 and d["applied"] == 0'

# import --check: verify without applying.
ok "V writes another change" --dir "$V" put notes/3 text=checked
ok "ws-vb writes its vv" --dir "$T/vb" vv -o "$T/vb2.vv"
ok "V exports it for ws-vb" --dir "$V" export --since-file "$T/vb2.vv" -o "$T/v2vb2.bundle"
before=$(digest_of "$T/vb")
run --dir "$T/vb" import --check "$T/v2vb2.bundle"
check "import --check of a good bundle says OK, with its count" \
    eval '[ "$rc" -eq 0 ] && has "v2vb2.bundle: OK: 1 change(s)" && has "nothing was imported"'
check "...and applies nothing" digest_is "$T/vb" "$before"
run --dir "$T/vb" import --check "$T/v2vb2.bundle" --json
check "import --check --json" json 'd["ok"] is True and d["changes"] == 1 and d["snapshot"] is False and d["members"] == 0'
ok "V exports a snapshot" --dir "$V" export --state -o "$T/v.snap"
run --dir "$T/vb" import --check "$T/v.snap"
check "import --check of a snapshot" eval '[ "$rc" -eq 0 ] && has "OK: a snapshot of"'
run --dir "$T/vb" status --json
refused_vb=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["refused"])' <"$T/out" 2>/dev/null)
alter_change "$T/v2vb2.bundle" "$T/v-altered.bundle"
refused "import --check of a tampered bundle fails" 1 --dir "$T/vb" import --check "$T/v-altered.bundle"
check "...saying the check failed: altered" eval 'has_err "check failed" && has_err "altered"'
corrupt "$T/v2vb2.bundle" "$T/v-bad.bundle"
refused "import --check of a damaged bundle fails" 1 --dir "$T/vb" import --check "$T/v-bad.bundle"
run --dir "$T/vb" status --json
check "a failed check is not counted as a refused import" json "d['refused'] == $refused_vb"
refused "importing the tampered bundle is refused" 1 --dir "$T/vb" import "$T/v-altered.bundle"
run --dir "$T/vb" status --json
check "status --json: refused went up by one" json "d['refused'] == $refused_vb + 1"
run --dir "$T/vb" status
check "status shows it for people" has "refused      $((refused_vb + 1)) import(s)"
check "the tampered import changed nothing" digest_is "$T/vb" "$before"
refused "import --check takes no --changes" 2 --dir "$T/vb" import --check "$T/v2vb2.bundle" --changes
refused "--check goes with import only" 2 --dir "$T/vb" export --check -o "$T/x.bundle"
invite_file "V enrolls ws-ve" "$V" "$T/ve.prov" ws-ve
run --dir "$V" devices
prefix_ve=$(printf '%s\n' "$out" | awk '$3 == "ws-ve" { print $1 }')
run --dir "$V" revoke "$prefix_ve" --json
check "revoke by the 16 hex digits \`devices\` shows" \
    json "d['name'] == 'ws-ve' and d['id'].startswith('$prefix_ve') and len(d['id']) == 64"
refused "revoke by a start of an id shorter than 8 digits: no such device" 1 --dir "$V" revoke "$(printf %s "$id_va" | cut -c1-4)"


# ---- bad arguments --------------------------------------------------------------------------------

refused "no command" 2 --dir "$A"
refused "unknown command" 2 --dir "$A" frobnicate
refused "unknown option" 2 --dir "$A" get patients/8812 --frob
refused "option without its value" 2 --dir "$A" put patients/8812 name=X --user
refused "--dir without its value" 2 get patients/8812 --dir
refused "an option that does not apply" 2 --dir "$A" digest --prefix x
refused "put without fields" 2 --dir "$A" put patients/8812
refused "get with too many arguments" 2 --dir "$A" get patients/8812 a b
refused "bad :int value" 2 --dir "$A" put patients/8812 age:int=abc
refused "int with a leading space" 2 --dir "$A" put patients/8812 "age:int= 3"
refused "null with a value" 2 --dir "$A" put patients/8812 fax:null=x
refused "int out of range" 2 --dir "$A" put patients/8812 age:int=99999999999999999999
refused "bad :bool value" 2 --dir "$A" put patients/8812 vip:bool=yes
refused "bad :double value" 2 --dir "$A" put patients/8812 w:double=1.5x
refused "odd :bytes hex" 2 --dir "$A" put patients/8812 photo:bytes=abc
refused "unknown type" 2 --dir "$A" put patients/8812 age:integer=3
refused "no '=' in an assignment" 2 --dir "$A" put patients/8812 name
refused "empty field name" 2 --dir "$A" put patients/8812 =x
refused "key without '/'" 2 --dir "$A" get patients
refused "key without '/' in put" 2 --dir "$A" put patients name=x
refused "key with an empty record id" 2 --dir "$A" get patients/
refused "collection with '/' in ls" 2 --dir "$A" ls appts/0900
refused "field name over 64 bytes" any --dir "$A" put patients/8812 "$(printf 'f%064d' 0)=x"
refused "user name over 64 bytes" any --dir "$A" put patients/8812 name=x --user "$(printf 'u%064d' 0)"
refused "collection name over 64 bytes" any --dir "$A" get "$(printf 'c%064d' 0)/1"
refused "a string that is not UTF-8" any --dir "$A" put patients/8812 "name=$(printf 'A\377B')"
check_sh "rejected puts changed nothing" '[ "$($bin --dir "$A" get patients/8812 age 2>/dev/null)" = 36 ]'
refused "export without -o" 2 --dir "$A" export
refused "import of a missing file" 1 --dir "$A" import "$T/no-such.bundle"
refused "import of a directory" 1 --dir "$A" import "$T"

mkdir "$T/plain"
echo "not a replica" >"$T/plain/notes.txt"
refused "--dir at a directory that is not a replica" 1 --dir "$T/plain" get patients/8812
refused "status of a directory that is not a replica" 1 --dir "$T/plain" status
refused "init in a directory holding other files" 1 --dir "$T/plain" init
check "the other files are left alone" [ "$(cat "$T/plain/notes.txt")" = "not a replica" ]
refused "--dir at a missing directory" 1 --dir "$T/missing" status
check "no directory was created for it" [ ! -e "$T/missing" ]
refused "--dir at a regular file" 1 --dir "$T/plain/notes.txt" status

# ---- large bundles: progress, refused whole, imported once --------------------------------------
# L and M: a fresh office (M enrolled by file). L writes about 1.5 MiB that does not compress.

L=$T/l
M=$T/m
ok "init an office for large bundles" --dir "$L" init --office "Large" --device ws-l
invite_file "L enrolls ws-m by file" "$L" "$T/m.prov" ws-m
ok "...who joins" --dir "$M" init --from "$T/m.prov" --code "$code"
i=0
while [ $i -lt 16 ]; do
    big=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(90000)).decode())')
    $limit $bin --dir "$L" put "scans/s$i" "image=$big" --user tech >/dev/null 2>&1 || break
    i=$((i + 1))
done
check_sh "L wrote 16 large records" '[ $i -eq 16 ]'
ok "M writes its vv" --dir "$M" vv -o "$T/m.vv"
ok "L exports what M lacks: changes" --dir "$L" export --changes --since-file "$T/m.vv" -o "$T/big.bundle"
check_sh "the bundle is over 1 MiB" '[ "$(wc -c <"$T/big.bundle")" -gt 1048576 ]'
before=$(digest_of "$M")

alter_change "$T/big.bundle" "$T/big-altered.bundle" -1
check_sh "a copy with its last change altered, checksum recomputed" '[ -s "$T/big-altered.bundle" ]'
run --dir "$M" import "$T/big-altered.bundle"
check_sh "...is refused (exit 1, nothing on stdout)" '[ "$rc" -eq 1 ] && [ -z "$out" ]'
check_sh "...with the error as the last line of stderr" \
    '[ "$(tail -n 1 "$T/err" | cut -c1-9)" = "replica: " ] && tail -n 1 "$T/err" | grep -q "not signed by a member of this office, or altered"'
check "...whole: the digest is unchanged" digest_is "$M" "$before"
refused "...none of its good changes was applied" 1 --dir "$M" get scans/s0 image
size=$(wc -c <"$T/big.bundle")
head -c $((size - 1)) "$T/big.bundle" >"$T/big-short.bundle"
run --dir "$M" import "$T/big-short.bundle" --json
check_sh "a large bundle one byte short is refused" '[ "$rc" -eq 1 ] && [ -z "$out" ]'
check "...with one line on stderr under --json (no progress)" [ "$(wc -l <"$T/err")" -eq 1 ]
check "...and the digest is unchanged" digest_is "$M" "$before"
head -c 4096 "$T/big.bundle" >"$T/big-head.bundle"
refused "its first 4 KiB alone are refused" 1 --dir "$M" import "$T/big-head.bundle"
check "...and the digest is unchanged" digest_is "$M" "$before"
ok "another office's export" --dir "$C" export -o "$T/c2.bundle"
refused "a foreign bundle is refused" 1 --dir "$M" import "$T/c2.bundle"
check "...and the digest is unchanged" digest_is "$M" "$before"

run --dir "$M" import "$T/big.bundle"
check "the large bundle is imported" [ "$rc" -eq 0 ]
check "...printing its counts on stdout" has "16 changes: 16 applied, 0 duplicates"
check "...with progress on stderr: reading, with its size" has_err "replica: import: reading $T/big.bundle ("
check "...verifying, with the count" has_err "replica: import: verifying 16 changes: every signature and seal"
check "...applying" has_err "applying 16 changes in one transaction"
check_sh "...in that order" '[ "$(sed -n "s/^replica: import: \([a-z]*\).*/\1/p" "$T/err" | tr "\n" " ")" = "reading verifying verified done " ]'
check "...done, with counts" has_err "replica: import: done in "
check "...16 applied" has_err "16 changes: 16 applied"
check "M and L are in sync" same_digest "$L" "$M"
after=$(digest_of "$M")
run --dir "$M" import "$T/big.bundle" --json
check "importing it again applies nothing" json 'd["applied"] == 0 and d["duplicates"] == 16 and d["changes"] == 16'
check "...and says nothing on stderr with --json" [ ! -s "$T/err" ]
check "...and the digest is unchanged" digest_is "$M" "$after"
run --dir "$M" import --check "$T/big.bundle"
check "import --check of a large bundle shows progress too" has_err "replica: import: checking"
refused "a small bundle (of another office) is refused with one line, no progress" 1 \
    --dir "$M" import "$T/a2b.bundle"

# ---- the change feed: changes --since CURSOR ---------------------------------------------------
F=$T/f
ok "init an office for the feed (its device record is its first change)" \
    --dir "$F" init --office Feed --device ws-f --listen tcp://127.0.0.1:7499
ok "a write" --dir "$F" put patients/1 name=Ada phone=555-0100 --user maria
ok "a counter" --dir "$F" incr patients/1 visits 2 --user joe
ok "a record delete" --dir "$F" put appts/0900 patient=1 --user maria
ok "...deleted" --dir "$F" del appts/0900 --user maria
run --dir "$F" changes --json
check "changes --json: one JSON line per change and record, then the cursor" python3 -c '
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
*chs, last = ls
assert [c["key"] for c in chs] == ["patients/1", "patients/1", "appts/0900", "appts/0900"], chs
assert [c["seq"] for c in chs] == [2, 3, 4, 5] and all(c["device_name"] == "ws-f" for c in chs)
assert [c["user"] for c in chs] == ["maria", "joe", "maria", "maria"]
assert all(len(c["device"]) == 64 and len(c["actor"]) == 16 and c["time"].endswith("Z") for c in chs)
assert chs[0]["collection"] == "patients" and chs[0]["record"] == "1"
assert {"op": "set", "field": "name", "kind": "register", "value": "Ada"} in chs[0]["ops"]
assert {"op": "incr", "field": "visits", "kind": "counter", "value": 2} in chs[1]["ops"]
assert {"op": "del", "field": "", "kind": "register"} in chs[3]["ops"]
assert set(last) == {"cursor", "changes", "more", "partial"} and last["changes"] == 4
assert last["more"] is False and last["partial"] is False and len(last["cursor"]) > 8
' "$T/out"
cur=$(tail -n 1 "$T/out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["cursor"])' 2>/dev/null)
run --dir "$F" changes --since "$cur" --json
check "after the cursor: nothing, and the same cursor" json 'd == {"cursor": "'"$cur"'", "changes": 0, "more": False, "partial": False}'
ok "another write" --dir "$F" put patients/2 name=Eve --user joe
run --dir "$F" changes --since "$cur" --json
check "after the cursor: exactly the new change" python3 -c '
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
assert len(ls) == 2 and ls[0]["key"] == "patients/2" and ls[0]["seq"] == 6 and ls[1]["changes"] == 1
' "$T/out"
pages=0 keys="" cur1=""
while [ $pages -lt 20 ]; do
    $limit $bin --dir "$F" changes ${cur1:+--since "$cur1"} --limit 1 --json >"$T/page" 2>/dev/null || break
    pages=$((pages + 1))
    keys="$keys$(python3 -c 'import json, sys; print(",".join(json.loads(l)["key"] for l in open(sys.argv[1]).readlines()[:-1]))' "$T/page")|"
    cur1=$(tail -n 1 "$T/page" | python3 -c 'import json, sys; print(json.load(sys.stdin)["cursor"])')
    tail -n 1 "$T/page" | grep -q '"more":true' || break
done
check_sh "--limit 1 pages through every change once, in order" \
    '[ "$keys" = "patients/1|patients/1|appts/0900|appts/0900|patients/2|" ] && [ $pages -eq 5 ]'
run --dir "$F" changes
check "changes for people: the change, its record and ops" has "set name = Ada"
check "...and the cursor on the last line" [ "$(tail -n 1 "$T/out" | cut -d" " -f1)" = "cursor" ]
check "...without the device record (collections starting with _ are the library's)" \
    sh -c '! grep -q _devices "$1"' sh "$T/out"
refused "a cursor cut short is a usage error" 2 --dir "$F" changes --since "${cur%?}"
check "...that says so" has_err "not a cursor"
refused "a mistyped cursor is a usage error" 2 --dir "$F" changes --since "x$cur"
refused "another office's cursor is refused" 1 --dir "$L" changes --since "$cur"
check "...saying so" has_err "another office"
refused "a bad --limit is a usage error" 2 --dir "$F" changes --limit ten
refused "changes takes no argument" 2 --dir "$F" changes "$cur"

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
