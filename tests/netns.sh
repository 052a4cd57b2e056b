#!/bin/bash
# tests/netns.sh — discovery on a LAN: real nodes in network namespaces joined by a bridge,
# started with no --peer, find each other by UDP broadcast beacons (CURVE on, as ever).
#
# The test makes its own namespaces (names carry its pid): one holds a bridge; each node's has
# a veth into it, on 10.201.0.0/24:
#   A  admin, founds "Office One"; listens on 0.0.0.0; a SECOND interface (eth1, 10.202.0.1/24,
#      a veth whose other end is in a namespace of its own: an address no peer can reach)
#   B  member, listens on 0.0.0.0          C  member, listens on its address 10.201.0.3 only
#   D  member, serves with --no-discovery  X  "Office Two"'s node, on the same bridge
#   E  enrolled, then revoked by A before any node starts (it keeps the old epoch's key)
# B and C are enrolled by provisioning files and never given each other's or A's address: B's
# provisioning predates C's, so B learns of C from A once they are connected.
#   (a) A, B and C connect to each other and to no one else, and their writes converge
#   (b) the several-interfaces rule: B and C dial A only at 10.201.0.1 (the address its beacon
#       came from), never at 10.202.0.1; status marks the peers discovered
#   (c) X is never connected: none of A, B, C lists or admits it, it connects to no one, and
#       both sides count the other's beacons as another office's
#   (d) D, with --no-discovery, sends no beacon and is found by no one
#   (e) E's beacons are ignored as a non-member's; it cannot read the new epoch's; no one stays
#       connected to it
#   (f) an eavesdropper F on the bridge captures A's beacon: sent again from F's address, with a
#       bit flipped, as garbage, or again from A's own address, it is ignored (misaddressed,
#       forged, malformed, replayed) and counted as such
#   (g) B moves to another address (its node restarted there): A and C find it there, and A
#       forgets the old address once nothing came from it for 15 s
# Needs root and a kernel that lets it make namespaces, veths and a bridge; otherwise it exits
# 77 (skip) saying why. Everything it made is removed at exit. Every wait is bounded.
#
# Standalone (as root): REPLICA=clients/replica bash tests/netns.sh
set -u

REPLICA=${REPLICA:-clients/replica}
skip() { echo "netns.sh: skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (it makes network namespaces)"
command -v ip >/dev/null 2>&1 || skip "the ip command (iproute2) is not installed"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"

T=$(mktemp -d "${TMPDIR:-/tmp}/netns.XXXXXX")
P="rpl$$"                       # prefix of every namespace this run makes
NODES="A B C D E X"
NSES=()
passed=0
failed=0
declare -A PID

cleanup() {
    for n in "${!PID[@]}"; do
        [ -n "${PID[$n]}" ] && kill -9 "${PID[$n]}" 2>/dev/null
    done
    wait 2>/dev/null
    for ns in "${NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap "exit 1" INT TERM

mkns() { ip netns add "$1" 2>"$T/ip.err" || return 1; NSES+=("$1"); ip -n "$1" link set lo up; }
mkns "${P}br" || skip "the kernel refuses network namespaces: $(cat "$T/ip.err")"
ip -n "${P}br" link add br0 type bridge 2>"$T/ip.err" || skip "no bridge: $(cat "$T/ip.err")"
ip -n "${P}br" link set br0 up
declare -A IP=([A]=10.201.0.1 [B]=10.201.0.2 [C]=10.201.0.3 [D]=10.201.0.4 [E]=10.201.0.5
               [X]=10.201.0.9)
for n in $NODES; do
    mkns "${P}$n" || skip "cannot make namespace ${P}$n: $(cat "$T/ip.err")"
    ip link add eth0 netns "${P}$n" type veth peer name "v$n" netns "${P}br" 2>"$T/ip.err" ||
        skip "no veth: $(cat "$T/ip.err")"
    ip -n "${P}br" link set "v$n" master br0 up
    ip -n "${P}$n" addr add "${IP[$n]}/24" brd + dev eth0
    ip -n "${P}$n" link set eth0 up
done
# A's second interface: up and broadcast-capable, but its other end is in a namespace alone
# F: an eavesdropper on the bridge, with no node
mkns "${P}F" || skip "cannot make a namespace: $(cat "$T/ip.err")"
ip link add eth0 netns "${P}F" type veth peer name vF netns "${P}br" 2>"$T/ip.err" ||
    skip "no veth: $(cat "$T/ip.err")"
ip -n "${P}br" link set vF master br0 up
ip -n "${P}F" addr add 10.201.0.66/24 brd + dev eth0
ip -n "${P}F" link set eth0 up
mkns "${P}nowhere" || skip "cannot make a namespace: $(cat "$T/ip.err")"
ip link add eth1 netns "${P}A" type veth peer name eth0 netns "${P}nowhere" 2>"$T/ip.err" ||
    skip "no veth: $(cat "$T/ip.err")"
ip -n "${P}A" addr add 10.202.0.1/24 brd + dev eth1
ip -n "${P}A" link set eth1 up
ip -n "${P}nowhere" addr add 10.202.0.2/24 brd + dev eth0
ip -n "${P}nowhere" link set eth0 up

ok() { passed=$((passed + 1)); echo "ok - $1"; }
notok() {
    failed=$((failed + 1))
    echo "not ok - $1"
    for f in "$T"/*.log; do [ -s "$f" ] && { echo "# --- $f"; tail -n 20 "$f" | sed 's/^/# /'; }; done
}
check() { local what=$1; shift; if "$@"; then ok "$what"; else notok "$what"; fi; }

r() { $REPLICA "$@"; }
now_ms() { date +%s%3N; }
PORT=7701
BEACON=47311

# serve NAME ARGS...: NAME's node in NAME's namespace (`ip netns exec` execs: $! is the node)
serve() {
    local n=$1
    shift
    local bp=(--beacon-port "$BEACON")
    case " $* " in *" --no-discovery "*) bp=() ;; esac
    ip netns exec "${P}$n" $REPLICA --dir "$T/$n" serve "${bp[@]}" "$@" 2>>"$T/$n.log" &
    PID[$n]=$!
}

# status NAME: the node's status as JSON (the CLI reaches it through the directory's socket,
# from this namespace)
status() { r --dir "$T/$1" status --json 2>/dev/null; }
# q NAME EXPR: evaluate a Python expression over n = NAME's node status; prints the result
q() {
    status "$1" | python3 -c "
import json, sys
try:
    n = json.load(sys.stdin)['node']
    print($2)
except Exception as e:
    print('error', e)"
}
connected() { q "$1" "sum(p['connected'] for p in n['peers'])"; }
# wait_for SECONDS CMD...: until CMD succeeds, at most SECONDS
# (quietly: the last try, after the deadline, says what it saw)
quiet=
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    quiet=1
    while [ "$(now_ms)" -lt "$deadline" ]; do
        "$@" && { quiet=; return 0; }
        sleep 0.2
    done
    quiet=
    "$@"
}
all_connected() { for n in A B C; do [ "$(connected "$n")" = 2 ] || return 1; done; }
digests_equal() { [ "$(for n in A B C; do r --dir "$T/$n" digest; done | sort -u | wc -l)" -eq 1 ]; }

# ---- the offices: A founds Office One and enrolls B, C and D by files; X founds Office Two --
r --dir "$T/A" init --office "Office One" --device ws-a >/dev/null
enrolled=0
for n in B C D E; do
    code=$(r --dir "$T/A" invite --file "$T/$n.prov" --device "ws-${n,,}" 2>/dev/null | tail -n 1)
    r --dir "$T/$n" init --from "$T/$n.prov" --code "$code" >/dev/null 2>&1 &&
        enrolled=$((enrolled + 1))
done
r --dir "$T/A" revoke ws-e >/dev/null 2>&1 && enrolled=$((enrolled + 1))
r --dir "$T/X" init --office "Office Two" --device ws-x >/dev/null
check "B, C, D and E are enrolled by files (no endpoint anywhere), E is revoked" eval '[ $enrolled -eq 5 ] &&
    [ -z "$(r --dir "$T/A" devices --json | python3 -c "
import json, sys
print([d for d in json.load(sys.stdin)[\"devices\"] if d[\"endpoints\"]] or \"\")")" ]'

# ---- (a) no --peer anywhere: they find each other -------------------------------------------
t0=$(now_ms)
serve A --listen "tcp://0.0.0.0:$PORT"
serve B --listen "tcp://0.0.0.0:$PORT"
serve C --listen "tcp://${IP[C]}:$PORT"
serve D --listen "tcp://0.0.0.0:$PORT" --no-discovery
serve E --listen "tcp://0.0.0.0:$PORT"
serve X --listen "tcp://0.0.0.0:$PORT"
check "(a) A, B and C connect to each other within 30 s, given no peer" wait_for 30 all_connected
echo "# connected $(( $(now_ms) - t0 )) ms after the nodes started"
writers=()
for n in A B C; do
    ( for i in $(seq 1 10); do r --dir "$T/$n" put "notes/$n-$i" text="from $n #$i" >/dev/null; done ) &
    writers+=($!)
done
wait "${writers[@]}"
check "(a) 30 writes on A, B and C converge within 10 s" wait_for 10 digests_equal
check "(a) ...every write is everywhere" eval '[ "$(r --dir "$T/B" ls notes --json | python3 -c "
import json, sys; print(len(json.load(sys.stdin)[\"records\"]))")" = 30 ]'

# ---- (b) the several-interfaces rule ----------------------------------------------------------
# is NAME EXPR WANT: the status expression's value is WANT (else it is shown)
is() {
    local got
    got=$(q "$1" "$2")
    [ "$got" = "$3" ] && return 0
    [ -n "$quiet" ] || echo "# $1: $2 = $got, want $3"
    return 1
}
two_rounds() { is A "n['discovery']['sent'] >= 4 and n['discovery']['sent'] % 2 == 0" True; }
check "(b) A beacons on both its interfaces (two per round)" wait_for 5 two_rounds
peer_a() {
    for n in B C; do
        is $n "[(p['endpoint'], p['connected'], p['discovered']) for p in n['peers'] if p['device_name'] == 'ws-a']" \
            "[('tcp://10.201.0.1:$PORT', True, True)]" || return 1
    done
}
check "(b) B and C reach A at 10.201.0.1, the address its beacon came from, marked discovered" \
    wait_for 10 peer_a
check "(b) no node ever dialed 10.202.0.1, A's unreachable address" \
    eval '! grep "10\.202\." "$T/B.log" "$T/C.log" "$T/X.log" && is B "[p for p in n['"'"'peers'"'"'] if '"'"'10.202.'"'"' in p['"'"'endpoint'"'"']]" "[]"'
check "(b) C, listening on one address, is reached there" \
    is A "[p['endpoint'] for p in n['peers'] if p['device_name'] == 'ws-c']" "['tcp://10.201.0.3:$PORT']"
clean_beacons() {
    for n in A B C; do
        is $n "n['discovery']['taken'] > 0 and [k for k, v in n['discovery']['ignored'].items() if v and k not in ('other_office', 'strangers', 'no_key')]" "[]" || return 1
    done
}
check "(b) beacons were taken, none ignored as malformed, forged, stale, replayed or misaddressed" clean_beacons

# ---- (c) another office's node on the same bridge ---------------------------------------------
check "(c) X connects to no one, is dialed by no one, and counts Office One's beacons as another office's" \
    is X "(len(n['peers']), n['refused_connections'], n['discovery']['ignored']['other_office'] > 0, n['discovery']['taken'])" "(0, 0, True, 0)"
no_x() {
    for n in A B C; do
        is $n "(sorted(p['device_name'] for p in n['peers'] if p['device_name'] != 'ws-e'), n['discovery']['ignored']['other_office'] > 0)" \
            "$(python3 -c "print((sorted({'ws-a', 'ws-b', 'ws-c', 'ws-d'} - {'ws-${n,,}'}), True))")" || return 1
    done
    ! grep -E "10\.201\.0\.9|ws-x" "$T/A.log" "$T/B.log" "$T/C.log"
}
check "(c) A, B and C never list, dial or admit X, and count its beacons as another office's" no_x
no_d() {
    for n in A B C; do
        is $n "[p['connected'] for p in n['peers'] if p['device_name'] == 'ws-d']" "[False]" || return 1
    done
}
check "(c) ...and none of them is connected to D, silent and undiscovered" no_d

# ---- (d) --no-discovery ------------------------------------------------------------------------
check "(d) D, serving with --no-discovery, has discovery off and no peer connected" \
    is D "(n['discovery']['on'], n['discovery']['sent'], sum(p['connected'] for p in n['peers']))" "(False, 0, 0)"
check "status prints discovery and the discovered peers" \
    eval 'r --dir "$T/B" status | grep -q "^discovery    UDP port $BEACON: " &&
          r --dir "$T/B" status | grep -q "tcp://10.201.0.1:$PORT (discovered)  connected" &&
          r --dir "$T/D" status | grep -q "^discovery    off"'

# ---- (e) a revoked device ------------------------------------------------------------------------
check "(e) A, which revoked E, counts E's beacons as a non-member's and never lists it" \
    is A "(n['discovery']['ignored']['strangers'] > 0, [p for p in n['peers'] if p['device_name'] == 'ws-e'])" "(True, [])"
check "(e) E cannot read the office's beacons of the new epoch; A never dialed it, and logged why" \
    eval 'is E "n[\"discovery\"][\"ignored\"][\"no_key\"] > 0" True && ! grep -q "dialing tcp://10.201.0.5" "$T/A.log" &&
          grep -q "ignoring the beacons of device .* from 10.201.0.5: not a member" "$T/A.log"'
e_alone() { [ "$(connected E)" = 0 ]; }
check "(e) within 15 s no one is connected to E (B and C learn of the revocation from A)" \
    wait_for 15 e_alone

# ---- (f) captured beacons sent again ----------------------------------------------------------
# udp MODE...: F's (or A's) python: "capture FILE" waits (at most 10 s) for a beacon from A and
# keeps it; "send FILE [flip|garbage]" broadcasts it (altered) on the bridge from where it runs
udp() {
    python3 -c '
import socket, sys, time
mode, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
if mode == "capture":
    s.bind(("", int(sys.argv[3])))
    s.settimeout(10)
    while True:
        b, src = s.recvfrom(512)
        if src[0] == "10.201.0.1":
            open(path, "wb").write(b)
            break
else:
    b = bytearray(open(path, "rb").read())
    if len(sys.argv) > 4 and sys.argv[4] == "flip":
        b[40] ^= 1
    if len(sys.argv) > 4 and sys.argv[4] == "garbage":
        b = b"RPLD" + b"\x01" + b"junk"
    s.sendto(bytes(b), ("10.201.0.255", int(sys.argv[3])))
' "$@"
}
ign() { q B "n['discovery']['ignored']['$1']"; }
ip netns exec "${P}F" bash -c "$(declare -f udp); udp capture '$T/a.beacon' $BEACON"
before=($(ign misaddressed) $(ign forged) $(ign malformed) $(ign replayed))
ip netns exec "${P}F" bash -c "$(declare -f udp); udp send '$T/a.beacon' $BEACON;
    udp send '$T/a.beacon' $BEACON flip; udp send '$T/a.beacon' $BEACON garbage"
ip netns exec "${P}A" bash -c "$(declare -f udp); udp send '$T/a.beacon' $BEACON"
counted() {
    local after=($(ign misaddressed) $(ign forged) $(ign malformed) $(ign replayed)) i
    for i in 0 1 2 3; do [ "${after[$i]}" -gt "${before[$i]}" ] || return 1; done
}
check "(f) A's captured beacon sent again from F, altered, as garbage, or from A: all counted as ignored by B" \
    wait_for 5 counted
check "(f) ...B logged the misaddressed one, and never dialed F's address" \
    eval 'grep -q "beacon of ws-a (.*) from 10.201.0.66: it names another address" "$T/B.log" &&
          ! grep -q "dialing tcp://10.201.0.66" "$T/B.log" &&
          is B "[p for p in n['"'"'peers'"'"'] if '"'"'10.201.0.66'"'"' in p['"'"'endpoint'"'"']]" "[]"'

# ---- (g) a workstation that moves ------------------------------------------------------------
kill -TERM "${PID[B]}" 2>/dev/null
wait "${PID[B]}" 2>/dev/null
PID[B]=
ip -n "${P}B" addr flush dev eth0
ip -n "${P}B" addr add 10.201.0.22/24 brd + dev eth0
t0=$(now_ms)
serve B --listen "tcp://0.0.0.0:$PORT"
b_moved() {
    for n in A C; do
        [ "$(q $n "[(p['endpoint'], p['connected']) for p in n['peers'] if p['device_name'] == 'ws-b']")" = \
          "[('tcp://10.201.0.22:$PORT', True)]" ] || return 1
    done
}
check "(g) B, moved to 10.201.0.22, is reached there by A and C within 10 s" wait_for 10 b_moved
echo "# found at its new address $(( $(now_ms) - t0 )) ms after its node restarted"
check "(g) A forgets B's old address within 25 s" \
    wait_for 25 grep -q "forgetting tcp://10.201.0.2:$PORT: no beacon from it" "$T/A.log"
r --dir "$T/B" put moved/b v=1 >/dev/null
check "(g) a write on B, moved, reaches A and C" wait_for 5 digests_equal

for n in A B C D E X; do
    kill -TERM "${PID[$n]}" 2>/dev/null
    wait "${PID[$n]}" 2>/dev/null
    rc=$?
    PID[$n]=
    [ $rc -eq 0 ] || notok "node $n stopped with status $rc"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
