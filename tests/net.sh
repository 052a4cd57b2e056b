#!/bin/bash
# tests/net.sh — the node with real processes and real sockets on 127.0.0.1, CURVE on.
#
# Three workstations of one office: A founds it (its admin) and enrolls B (member) and C
# (admin) with provisioning files (`invite --file`, `init --from --code`); bundles carry the
# endpoints they announce back and forth:
#   (a) writes on all three at once converge       (b) a node killed -9 catches up
#   (c) churn: nodes stopped and started while writing loses no acknowledged write
#   (d) a stranger (valid keys, enrolled only by a copy of A's replica, so not in the office's
#       membership log) and another office's device are refused
#   (e) garbage and oversized frames: the node keeps serving and applies nothing
#   (f) a `replica put` in another process reaches a connected peer within 100 ms
#   (g) enrollment by invitation: a token from an admin's node enrolls one workstation, once;
#       mistyped, used, expired and forged tokens are refused and leave nothing behind; C, an
#       admin enrolled by file, invites too; a file made while A's node serves reaches B at once
#   (h) revocation: A revokes C (its node off) while A's and B's run; B's device list loses C
#       within 10 s; C's node, restarted, is refused: its new write reaches neither A nor B; a
#       write on A still reaches B
# Ports are picked free at run time; every wait is bounded. Prints ok / not ok lines and
# "N passed, M failed"; exit 77 (skip) without python3.
#
# Standalone: REPLICA=clients/replica NETPOKE=tests/netpoke bash tests/net.sh
set -u

REPLICA=${REPLICA:-clients/replica}
NETPOKE=${NETPOKE:-${top_builddir:-.}/tests/netpoke}
. "$(dirname "${BASH_SOURCE[0]}")/netlib.sh"

# start NAME: serve NAME's directory, listening on its port
start() { start_node "$1" --listen "tcp://127.0.0.1:${PORT[$1]}"; }

# ---- enrollment by files: A founds the office, B and C join from provisioning files ----------
for n in A B C D; do PORT[$n]=$(free_port); done
r --dir "$T/A" init --office "Net Test" --device ws-a --listen "tcp://127.0.0.1:${PORT[A]}" >/dev/null
# (d)'s stranger: enrolled by a copy of A's replica, whose entry never reaches the office
cp -r "$T/A" "$T/A-copy"
code=$(r --dir "$T/A-copy" invite --file "$T/d.prov" --device stranger 2>/dev/null | tail -n 1)
r --dir "$T/D" init --from "$T/d.prov" --code "$code" --listen "tcp://127.0.0.1:${PORT[D]}" \
    >/dev/null 2>&1
rm -rf "$T/A-copy" "$T/d.prov"
declare -A ROLE=([B]=member [C]=admin)
joined=0
for n in B C; do
    code=$(r --dir "$T/A" invite --file "$T/${n,,}.prov" --device "ws-${n,,}" --role "${ROLE[$n]}" \
        2>/dev/null | tail -n 1)
    r --dir "$T/$n" init --from "$T/${n,,}.prov" --code "$code" \
        --listen "tcp://127.0.0.1:${PORT[$n]}" >/dev/null 2>&1 && joined=$((joined + 1))
    r --dir "$T/$n" export -o "$T/${n,,}.bundle" 2>/dev/null
    r --dir "$T/A" import "$T/${n,,}.bundle" >/dev/null
done
check "B and C join from provisioning files" [ "$joined" -eq 2 ]
r --dir "$T/A" export -o "$T/a2.bundle" 2>/dev/null
for n in B C; do r --dir "$T/$n" import "$T/a2.bundle" >/dev/null; done
check "every replica lists the three devices, with the roles A gave and their endpoints" \
    eval 'for n in A B C; do r --dir "$T/$n" devices --json | python3 -c "
import json, sys
d = json.load(sys.stdin)[\"devices\"]
assert sorted((x[\"name\"], x[\"role\"], len(x[\"endpoints\"])) for x in d) == [
    (\"ws-a\", \"admin\", 1), (\"ws-b\", \"member\", 1), (\"ws-c\", \"admin\", 1)], d" || exit 1; done'
check "the stranger is in no replica's device list" \
    eval '! r --dir "$T/A" devices | grep -q stranger && ! r --dir "$T/C" devices | grep -q stranger'
check "status says no node runs" eval 'r --dir "$T/A" status | grep -q "no node running"'

# ---- (a) three nodes, writes on all three at once ---------------------------------------------
for n in A B C; do start $n; done
check "three nodes connect to each other" wait_connected 10 2 A B C
t0=$(now_ms)
for n in A B C; do
    ( for i in $(seq 1 15); do r --dir "$T/$n" put "notes/$n-$i" text="from $n #$i" >/dev/null; done ) &
done
wait_writers() { for j in $(jobs -p); do case " ${PID[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }
wait_writers
check "(a) 45 concurrent writes on three nodes converge within 5 s" converge 5 A B C
echo "# converged $(( $(now_ms) - t0 )) ms after the writes began"
check "(a) ...and every write is everywhere" eval '[ "$(count C notes)" -eq 45 ] && [ "$(count A notes)" -eq 45 ]'
check "status shows the peers, connected, nothing behind" eval 'r --dir "$T/A" status --json | python3 -c "
import json, sys
n = json.load(sys.stdin)[\"node\"]
assert len(n[\"peers\"]) == 2 and all(p[\"connected\"] and p[\"device_name\"] in (\"ws-b\", \"ws-c\") and p[\"last_seen_ms\"] > 0 and p[\"received_bytes\"] > 0 for p in n[\"peers\"]), n"'

# ---- (f) a put from another process reaches a connected peer within 100 ms -------------------
lat=()
for i in 1 2 3 4 5; do
    r --dir "$T/A" put "lat/$i" v="$i" >/dev/null
    t0=$(now_ms)
    until r --dir "$T/B" get "lat/$i" v >/dev/null 2>&1; do
        [ $(( $(now_ms) - t0 )) -gt 3000 ] && break
    done
    lat+=($(( $(now_ms) - t0 )))
done
sorted=$(printf '%s\n' "${lat[@]}" | sort -n | tr '\n' ' ')
echo "# put on A -> visible on B (ms, includes starting \`replica get\`): $sorted"
median=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n 3p)
check "(f) a put reaches a connected peer within 100 ms (median of 5: ${median} ms)" [ "$median" -lt 100 ]

# ---- (b) partition: kill -9 one node, write everywhere, restart ------------------------------
stop C KILL
r --dir "$T/A" put part/a v=1 >/dev/null
r --dir "$T/B" put part/b v=1 >/dev/null
r --dir "$T/C" put part/c v=1 >/dev/null     # offline, on the killed node's directory
check "(b) A and B converge while C is down" converge 5 A B
start C
check "(b) the killed node, restarted, converges" converge 8 A B C
check "(b) ...with the writes made on every side" eval '[ "$(count A part)" -eq 3 ] && [ "$(count C part)" -eq 3 ]'

# ---- (c) churn: nodes stopped and started while writing --------------------------------------
acked=0
for round in 1 2 3 4 5 6; do
    victim=$(printf 'A\nB\nC\n' | sed -n "$(( round % 3 + 1 ))p")
    if [ $((round % 2)) -eq 0 ]; then stop "$victim" KILL; else stop "$victim" TERM; fi
    for n in A B C; do
        for i in 1 2; do
            r --dir "$T/$n" put "churn/$round-$n-$i" v="$round" >/dev/null && acked=$((acked + 1))
        done
    done
    start "$victim"
    sleep 0.3
done
check "(c) after churn, the three converge" converge 10 A B C
check "(c) no acknowledged write is lost ($acked acknowledged)" \
    eval '[ "$(count A churn)" -eq "$acked" ] && [ "$(count B churn)" -eq "$acked" ] && [ "$(count C churn)" -eq "$acked" ]'
check "stopped cleanly: SIGTERM exits 0" eval 'stop B TERM'
start B
wait_connected 10 2 A B C

# ---- (d) strangers are refused -----------------------------------------------------------------
r --dir "$T/X" init --office "Another Office" --device other >/dev/null
r --dir "$T/D" put stranger/1 v=evil >/dev/null
before=$(r --dir "$T/A" digest)
out=$("$NETPOKE" --dir "$T/B" --server-dir "$T/A" --to "tcp://127.0.0.1:${PORT[A]}" auth)
check "(d) an enrolled device's keys are admitted ($out)" [ "$out" = admitted ]
out=$("$NETPOKE" --dir "$T/D" --server-dir "$T/A" --to "tcp://127.0.0.1:${PORT[A]}" auth)
check "(d) an unenrolled device with valid CURVE keys is refused ($out)" [ "$out" = refused ]
out=$("$NETPOKE" --dir "$T/X" --server-dir "$T/A" --to "tcp://127.0.0.1:${PORT[A]}" auth)
check "(d) a device of another office is refused ($out)" [ "$out" = refused ]
start D   # dials A (it knows A's endpoint from the copy's snapshot): A refuses it
sleep 2
check "(d) the stranger's node is refused, and says so" eval 'grep -q "refused this device" "$T/D.log"'
check "(d) A logs the refusals" eval 'grep -q "refused a connection" "$T/A.log"'
check "(d) nothing of the stranger's reached the office" \
    eval '! r --dir "$T/A" get stranger/1 v >/dev/null 2>&1 && [ "$(r --dir "$T/A" digest)" = "$before" ]'
check "(d) status counts refused connections" eval 'r --dir "$T/A" status --json | python3 -c "
import json, sys; assert json.load(sys.stdin)[\"node\"][\"refused_connections\"] > 0"'
stop D TERM

# ---- (e) garbage and oversized frames ----------------------------------------------------------
out=$("$NETPOKE" --dir "$T/B" --server-dir "$T/A" --to "tcp://127.0.0.1:${PORT[A]}" garbage)
check "(e) an enrolled device's garbage and 5 MiB frame were sent ($out)" [ "$out" = admitted ]
python3 - "${PORT[A]}" <<'EOF'
import os, socket, sys
port = int(sys.argv[1])
for payload in (os.urandom(1 << 20),
                b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, 0]) + b"CURVE".ljust(20, b"\0") + os.urandom(4096),
                b"GET / HTTP/1.0\r\n\r\n"):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(payload)
        s.close()
    except OSError:
        pass
EOF
check "(e) raw TCP junk sent" true
r --dir "$T/C" put after/garbage v=1 >/dev/null
check "(e) A keeps serving: a later write converges" converge 5 A B C
check "(e) ...and the garbage was counted, not applied" eval 'r --dir "$T/A" status --json | python3 -c "
import json, sys
n = json.load(sys.stdin)[\"node\"]
assert n[\"bad_frames\"] + sum(p[\"refused\"] for p in n[\"peers\"]) > 0, n"'

# ---- (g) enrollment by invitation ---------------------------------------------------------------
tok=$(r --dir "$T/A" invite --ttl 5m 2>/dev/null | tail -n 1)
check "(g) an admin's node prints a token on the last line" [ -n "$tok" ]
check "(g) a member's node does not invite" eval '! r --dir "$T/B" invite 2>"$T/inv.err" && grep -q "only an admin" "$T/inv.err"'
check "(g) a mistyped token is refused as such" \
    eval '! r --dir "$T/E" join "${tok%?}x" 2>"$T/j.err"; grep -q "not an invitation token" "$T/j.err" && [ ! -e "$T/E" ]'
check "(g) a new workstation joins with the token" \
    eval 'r --dir "$T/E" join "$tok" --device ws-e >/dev/null'
check "(g) ...is in A's device list at once, and E has the office's data" \
    eval 'r --dir "$T/A" devices | grep -q ws-e && [ "$(count E after)" -ge 1 ]'
check "(g) the token is used up: a second join is refused, leaving nothing" \
    eval '! r --dir "$T/F" join "$tok" --device ws-f 2>"$T/j.err" && grep -q "refused" "$T/j.err" && [ ! -e "$T/F" ]'
old_tok=$(r --dir "$T/A" invite --ttl 1s 2>/dev/null | tail -n 1)
sleep 1.2
check "(g) an expired token is refused" \
    eval '! r --dir "$T/F" join "$old_tok" 2>"$T/j.err" && grep -q "expired" "$T/j.err"'
forged=$(python3 - "$tok" <<'EOF2'
import base64, hashlib, sys
t = sys.argv[1]
raw = bytearray(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
body = raw[:-4]
i = body.find(bytes([0xc4, 32]), body.find(bytes([0xc4, 32])) + 34)  # the secret: second bin 32
body[i + 2] ^= 0xff                                                   # a secret A never issued
body += hashlib.blake2b(bytes(body), digest_size=32).digest()[:4]
print(base64.urlsafe_b64encode(bytes(body)).decode().rstrip("="))
EOF2
)
check "(g) a forged token (a secret A never issued) is refused at the handshake" \
    eval '! r --dir "$T/F" join "$forged" 2>"$T/j.err" && grep -q "refused" "$T/j.err" && [ ! -e "$T/F" ]'
tok2=$(r --dir "$T/C" invite --ttl 5m 2>/dev/null | tail -n 1)
check "(g) C, an admin enrolled by file, invites too" \
    eval '[ -n "$tok2" ] && r --dir "$T/G" join "$tok2" --device ws-g >/dev/null'
check "(g) ...and its device list has the new workstation" eval 'r --dir "$T/C" devices | grep -q ws-g'
code=$(r --dir "$T/A" invite --file "$T/h.prov" --device ws-h 2>/dev/null | tail -n 1)
check "(g) A enrolls a workstation by file while its node serves" [ -n "$code" ]
reached() {   # reached NAME DEVICE SECONDS: NAME's device list has DEVICE within SECONDS
    local deadline=$(($(now_ms) + $3 * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        r --dir "$T/$1" devices | grep -q "$2" && return 0
        sleep 0.1
    done
    return 1
}
check "(g) ...and B's node learns of it from A's within 5 s" reached B ws-h 5
check "(g) ...and the file makes its replica" \
    eval 'r --dir "$T/H" init --from "$T/h.prov" --code "$code" >/dev/null 2>&1'
PORT[E]=$(free_port)
$REPLICA --dir "$T/E" serve --listen "tcp://127.0.0.1:${PORT[E]}" --peer "tcp://127.0.0.1:${PORT[A]}" 2>>"$T/E.log" &
PID[E]=$!
r --dir "$T/E" put joined/e by=ws-e >/dev/null
r --dir "$T/B" put joined/b by=ws-b >/dev/null
check "(g) the joined workstation's node syncs with the office" converge 10 A B C E
check "node E stops with exit 0 on SIGTERM" stop E TERM

# ---- (h) revocation: A revokes C while the nodes run --------------------------------------------
gone() {   # gone NAME DEVICE SECONDS: NAME's device list lacks DEVICE within SECONDS
    local deadline=$(($(now_ms) + $3 * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        r --dir "$T/$1" devices >"$T/gone.out" 2>/dev/null && ! grep -q "$2" "$T/gone.out" && return 0
        sleep 0.1
    done
    return 1
}
# without_peer SECONDS DEVICE NAME...: no NAME's node has DEVICE as a connected peer
without_peer() {
    local deadline=$(($(now_ms) + $1 * 1000)) dev=$2 n all
    shift 2
    while [ "$(now_ms)" -lt "$deadline" ]; do
        all=1
        for n in "$@"; do
            r --dir "$T/$n" status --json 2>/dev/null | python3 -c '
import json, sys
n = json.load(sys.stdin)["node"]
sys.exit(n is None or any(p["connected"] and p["device_name"] == sys.argv[1] for p in n["peers"]))' "$dev" ||
                { all=0; break; }
        done
        [ $all -eq 1 ] && return 0
        sleep 0.1
    done
    return 1
}
check "(h) before: A, B and C are connected" wait_connected 10 2 A B C
r --dir "$T/C" put revoke/before v=1 >/dev/null
check "(h) a write on C before its revocation reaches A and B" \
    eval 'appears A revoke/before v 5 && appears B revoke/before v 5'
# C's node is off while it is revoked (a laptop stolen while shut): it cannot have learned of it
stop C TERM
check "(h) A revokes C while A's node serves" eval 'r --dir "$T/A" revoke ws-c >"$T/revoke.out" 2>&1'
check "(h) ...saying the node passes it on now" grep -q "passes it on now" "$T/revoke.out"
check "(h) A's device list no longer has C" gone A ws-c 1
t0=$(now_ms)
check "(h) B's device list loses C within 10 s" gone B ws-c 10
echo "# B learned of the revocation $(( $(now_ms) - t0 )) ms after the revoke returned"
check "(h) C, not knowing, still writes locally" eval 'r --dir "$T/C" put revoke/after v=stolen >/dev/null'
# a node rereads its device list within VV_CHECK_MS (1 s) of taking a revocation from a peer
sleep 1.5
refusals=$(cat "$T/A.log" "$T/B.log" | grep -c "refused a connection")
c_refused=$(grep -c "refused this device" "$T/C.log")
start C
sleep 3
check "(h) C's node is refused: its write reaches neither A nor B (3 s)" \
    eval '! r --dir "$T/A" get revoke/after v >/dev/null 2>&1 && ! r --dir "$T/B" get revoke/after v >/dev/null 2>&1'
check "(h) ...A's and B's nodes refuse its connections" \
    eval '[ "$(cat "$T/A.log" "$T/B.log" | grep -c "refused a connection")" -gt "$refusals" ]'
check "(h) ...C's node says so" eval '[ "$(grep -c "refused this device" "$T/C.log")" -gt "$c_refused" ]'
check "(h) ...and neither A's nor B's node has C as a connected peer" without_peer 2 ws-c A B
check "(h) C's write from before its revocation stays" \
    eval 'r --dir "$T/A" get revoke/before v >/dev/null && r --dir "$T/B" get revoke/before v >/dev/null'
r --dir "$T/A" put revoke/a v=1 >/dev/null
check "(h) a write on A still reaches B within 5 s" appears B revoke/a v 5
check "(h) ...but not C" eval '! r --dir "$T/C" get revoke/a v >/dev/null 2>&1'
check "(h) A and B converge" converge 5 A B

for n in A B C; do
    check "node $n stops with exit 0 on SIGTERM" stop $n TERM
done
check "no socket file is left behind" eval '! ls "$T"/A/node.* >/dev/null 2>&1'

finish
