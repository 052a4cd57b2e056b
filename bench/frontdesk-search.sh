#!/bin/bash
# bench/frontdesk-search.sh — the front desk's patient search through HTTP on N patients
# (default 10,000): a replica filled by bench/frontdesk_load, served by `replica serve --http`
# on 127.0.0.1, searched with curl (one connection per request, as a page's fetch may be).
#
#   make bench/frontdesk_load clients/replica
#   bash ../bench/frontdesk-search.sh [N] [REPS]      (from the build directory)
#
# Prints, per query, the median and the worst of REPS requests' total time as curl measures
# it (connect, request, answer), and the server's own took_ms (the scan and the match) of the
# last one. The target (issue 8): well under 100 ms.
set -u
N=${1:-10000}
REPS=${2:-21}
REPLICA=${REPLICA:-clients/replica}
LOAD=${LOAD:-bench/frontdesk_load}
T=$(mktemp -d "${TMPDIR:-/tmp}/fdbench.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$REPLICA --dir "$T/r" init --office Bench --device bench >/dev/null || exit 1
$LOAD "$T/r" "$N" >/dev/null || exit 1
$REPLICA --dir "$T/r" serve --no-discovery --http "127.0.0.1:$port" 2>"$T/log" &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf -o "$T/page" "$base/" && break; sleep 0.1; done
token=$(grep -o 'content="[A-Za-z0-9_-]\{43\}"' "$T/page" | cut -d'"' -f2)
[ -n "$token" ] || { echo "the server did not start:"; cat "$T/log"; exit 1; }

echo "patient search through HTTP: $N patients, $REPS requests per query (ms)"
printf '%-22s %8s %8s %8s %8s\n' query matches median worst server
for q in "q=ruiz" "q=an" "q=zzz" "q=Tara%20Sato" "dob=1980" "dob=1955-03-14"; do
    for _ in $(seq "$REPS"); do
        curl -s -o "$T/body" -w '%{time_total}\n' -H "X-Frontdesk-Token: $token" "$base/api/patients?$q"
    done | sort -n >"$T/times"
    python3 - "$T/times" "$T/body" "$q" <<'EOF'
import json, sys
t = [float(x) * 1000 for x in open(sys.argv[1])]
d = json.load(open(sys.argv[2]))
print("%-22s %8d %8.1f %8.1f %8.1f" % (sys.argv[3], d["total"], t[len(t) // 2], t[-1], d["took_ms"]))
EOF
done
