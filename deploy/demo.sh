#!/bin/sh
# `make demo`: a fresh Aegis service and a simulated fleet of 1,000 devices, start to finish, in a temporary
# directory. It provisions the fleet, imports it, attests every device (certificates issued), uploads crash
# reports (bucketed by the service), rolls a good release out in waves, and rolls out a bad release that the
# service halts by itself. Every figure it prints is read back from the service's API, and each one is checked:
# the exit status is 0 only when every expectation held (each line "ok" or "FAILED"). The daemon is stopped
# and the temporary directory removed on every exit path (KEEP=1 keeps the directory, to look around).
#
#   sh deploy/demo.sh [BUILD]          (make demo: installs missing packages and builds first)
#
# Environment: DEVICES (1000), KEEP (0). Needs build/aegisd, build/aegisctl, build/aegis-sim, curl, python3.
# Everything goes to one temporary directory: on /dev/shm when it has more than 1 GiB free, else on TMPDIR. The
# simulated devices' storage (their "flash", about 200 MB for 1,000 devices) and the service's database are then
# in memory, so that the demo measures the service and the devices rather than a (shared, busy) disk's fsyncs.
# A run that takes more than 120 s ends with a warning (the demo should take well under two minutes).
set -eu
BUILD=${1:-build}
DEVICES=${DEVICES:-1000}
KEEP=${KEEP:-0}
case "$DEVICES" in
'' | *[!0-9]*) echo "demo: DEVICES must be a number, not '$DEVICES'" >&2; exit 2 ;;
esac
if [ "$DEVICES" -lt 100 ]; then
    echo "demo: DEVICES must be at least 100 (the bad release's first wave needs 10 devices or more)" >&2
    exit 2
fi
for b in aegisd aegisctl aegis-sim; do
    [ -x "$BUILD/$b" ] || { echo "demo: $BUILD/$b is missing: run make first (make demo does)" >&2; exit 2; }
done
BUILD=$(cd "$BUILD" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T0=$(date +%s)

BASE=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 1048576 ]; then
    BASE=/dev/shm
fi
WORK=$(mktemp -d "$BASE/aegis-demo.XXXXXX")
FLEET=$WORK/fleet
DAEMON=""
CHILD=""
failed=0

# Stops the daemon: SIGTERM (it drains, at most drain_timeout = 10 s), SIGKILL from a guard after 30 s. Sets
# daemon_rc to its exit status.
stop_daemon() {
    daemon_rc=none
    [ -n "$DAEMON" ] || return 0
    kill -TERM "$DAEMON" 2>/dev/null || true
    (
        trap 'kill "$s"; exit 0' TERM
        sleep 30 &
        s=$!
        wait "$s" && kill -KILL "$DAEMON"
    ) >/dev/null 2>&1 &
    guard=$!
    daemon_rc=0
    wait "$DAEMON" || daemon_rc=$?
    kill "$guard" 2>/dev/null || true
    [ "$daemon_rc" != 137 ] || echo "demo: aegisd did not stop within 30 s of SIGTERM: killed" >&2
    DAEMON=""
}

# Whatever ended the run: the daemon stopped, the directories removed (KEEP=1 keeps them).
cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    stop_daemon
    if [ "$rc" -ne 0 ] && [ -f "$WORK/aegisd.log" ]; then
        echo "demo: the daemon's log ends with:" >&2
        tail -n 20 "$WORK/aegisd.log" >&2
    fi
    if [ "$KEEP" = 1 ]; then
        echo "demo: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# bg CMD...: runs a long command in the background and waits for it, so that a signal to this script is acted
# on at once (sh runs a trap only after the foreground command ends); cleanup stops it.
bg() {
    "$@" &
    CHILD=$!
    bg_rc=0
    wait "$CHILD" || bg_rc=$?
    CHILD=""
    return "$bg_rc"
}

step() { printf '\n== %s (%ds)\n' "$*" "$(($(date +%s) - T0))"; }

# expect WHAT CONDITION: CONDITION is a shell condition (eval'ed); prints "ok" or "FAILED" before WHAT, whose
# figures were read back from the service, and counts the failures.
expect() {
    if eval "$2"; then
        printf '   ok      %s\n' "$1"
    else
        printf '   FAILED  %s  (expected: %s)\n' "$1" "$2"
        failed=$((failed + 1))
    fi
}

# fetch PATH: GET PATH from the manufacturer API (as the tenant's admin) into $WORK/got.json.
fetch() {
    curl -sS --fail-with-body --cacert "$AEGIS_CACERT" -H "@$WORK/auth.header" \
        "$AEGIS_SERVER$1" >"$WORK/got.json" || { cat "$WORK/got.json" >&2; return 1; }
}

# pick [-f FILE] NAME=EXPR...: shell assignments NAME='value' of python expressions over the JSON document d of
# FILE (default: the last fetch), for eval "$(pick ...)". One interpreter for all of a step's figures.
pick() {
    f=$WORK/got.json
    if [ "$1" = -f ]; then
        f=$2
        shift 2
    fi
    "$PY" - "$f" "$@" <<'EOF_PY'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
for a in sys.argv[2:]:
    k, e = a.split("=", 1)
    print("%s=%s" % (k, shlex.quote(str(eval(e)))))
EOF_PY
}

# daemon_cpu: the CPU seconds aegisd and its signer processes used so far (Linux /proc: the process and its
# descendants, threads included).
daemon_cpu() {
    "$PY" - "$DAEMON" <<'EOF_PY'
import os, sys
stat = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        continue
    stat[int(p)] = (int(f[1]), int(f[11]) + int(f[12]))
todo, total = [int(sys.argv[1])], 0
while todo:
    pid = todo.pop()
    total += stat.get(pid, (0, 0))[1]
    todo += [c for c, (pp, _) in stat.items() if pp == pid]
print("%.0f" % (total / os.sysconf("SC_CLK_TCK")))
EOF_PY
}

# metric NAME{LABELS}: a sample of the service's /metrics (0 when absent).
metric() {
    curl -sS --fail --cacert "$AEGIS_CACERT" "$AEGIS_SERVER/metrics" |
        awk -v s="$1" '$1 == s { v = $2 } END { printf "%d\n", v + 0 }'
}

CTL="$BUILD/aegisctl"
SIM="$BUILD/aegis-sim"
# The standard library is all the demo uses: Debian's own interpreter when there is one (a version manager's shim
# on the PATH can cost a second per call).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
DATA="$WORK/data"   # the service's data directory: nothing else may live in it (key isolation)
# aegisctl's stored context (~/.config/aegis) is neither read nor written: everything comes from the environment.
export XDG_CONFIG_HOME="$WORK/config"

step "a fresh service in $WORK"
mkdir -m 0700 "$DATA" "$WORK/run"
"$CTL" --data-dir "$DATA" pki init --hosts localhost,127.0.0.1 >/dev/null
# The example configuration, with rate limits for one simulator that speaks for 1,000 devices from one address.
sed -e "s|^data_dir = .*|data_dir = $DATA|" -e "s|^log_level = .*|log_level = warn|" \
    -e "s|^per_ip_connections = .*|per_ip_connections = 0|" \
    -e "s/^\(challenge\|telemetry\|update_status\)_\(rate\|burst\) = .*/\1_\2 = 100000/" \
    "$ROOT/deploy/aegisd.conf" >"$WORK/aegisd.conf"
"$CTL" --data-dir "$DATA" migrate >/dev/null
"$CTL" --data-dir "$DATA" tenant create demo --token-out "$WORK/admin.token" >/dev/null
"$BUILD/aegisd" --config "$WORK/aegisd.conf" --listen 127.0.0.1:0 --ready-file "$WORK/run/port" \
    2>"$WORK/aegisd.log" &
DAEMON=$!
n=0
until [ -s "$WORK/run/port" ]; do
    kill -0 "$DAEMON" 2>/dev/null || { echo "demo: aegisd exited before it was ready" >&2; exit 1; }
    [ $n -lt 300 ] || { echo "demo: aegisd not ready after 30 s" >&2; exit 1; }
    sleep 0.1
    n=$((n + 1))
done
export AEGIS_SERVER="https://127.0.0.1:$(cat "$WORK/run/port")" AEGIS_CACERT="$DATA/pki/root.crt"
AEGIS_TOKEN=$(cat "$WORK/admin.token")
export AEGIS_TOKEN
# curl reads the token from a header file of mode 0600 (-H @FILE): on its command line, every user could read it
# in ps. aegisctl takes it from the environment, which only this user can read.
(umask 077 && printf 'Authorization: Bearer %s\n' "$AEGIS_TOKEN" >"$WORK/auth.header")
echo "   aegisd (pid $DAEMON) serves $AEGIS_SERVER; tenant 'demo'; the devices' storage: $FLEET"

step "manufacturing: $DEVICES devices provisioned (key stores, images), their public keys imported into a group"
bg "$SIM" provision --devices "$DEVICES" --dir "$FLEET" >/dev/null
"$CTL" products create thermostat >/dev/null
"$CTL" groups create field --product 1 >/dev/null
"$CTL" devices import "$FLEET/import.json" --group 1 >/dev/null
"$CTL" --data-dir "$DATA" refvals import "$FLEET/refvals.json" >/dev/null
fetch /v1/devices/stats
eval "$(pick active='d["states"]["active"]')"
expect "devices imported and claimed: $active" '[ "$active" -eq "$DEVICES" ]'

step "every device boots: measures its software, attests, gets a certificate; a quarter of them crash"
bg "$SIM" run --dir "$FLEET" --server "$AEGIS_SERVER" --cacert "$AEGIS_CACERT" --concurrency 64 --no-fsync \
    --boots 1 --crash 0.25 --seed 7 --json >"$WORK/run.json"
# The crash (and heartbeat) of a device's boot is in its power-safe queue; it goes up at the next boot, below.
eval "$(pick -f "$WORK/run.json" made='d["telemetry"]["crash_reports_made"]' seen='d["attest"]["outcomes"]')"
fetch /v1/devices/stats
eval "$(pick passed='d["attestation"]["pass"]' valid='d["certificates"]["valid"]')"
issued=$(metric 'aegis_certificates_issued_total{kind="device"}')
expect "devices whose last attestation passed: $passed" '[ "$passed" -eq "$DEVICES" ]'
expect "devices holding a valid certificate: $valid; certificates issued: $issued" \
    '[ "$valid" -eq "$DEVICES" ] && [ "$issued" -ge "$DEVICES" ]'
echo "   (the simulator saw: attestations $seen; $made crashes, reported at each device's next boot)"

step "release app 1.1.0, signed offline, rolled out in three waves (10 %, 50 %, 100 %; a 2 s soak each)"
"$CTL" ota keys init --dir "$WORK/keys" --yes >/dev/null
head -c 65536 /dev/urandom >"$WORK/app-1.1.0.img"
head -c 65536 /dev/urandom >"$WORK/app-1.2.0.img"
for v in 1.1.0:2 1.2.0:3; do
    "$CTL" images upload "$WORK/app-${v%:*}.img" --product 1 --component aegis-app --kind app \
        --image-version "${v%:*}" --svn "${v#*:}" --hardware sim-hw --register-refval >/dev/null
done
"$CTL" ota sign --dir "$WORK/keys" --yes >/dev/null
sha() { sha256sum "$1" | cut -c1-64; }
good=$("$CTL" deployments create 1 "app 1.1.0" --images "$(sha "$WORK/app-1.1.0.img")" --waves 10,50,100 \
    --soak 2 -o 'jsonpath={.id}')
# Simulated time runs 600 times faster: a trial boot's health check (60 s) takes 0.1 s.
update() {
    bg "$SIM" update --dir "$FLEET" --server "$AEGIS_SERVER" --cacert "$AEGIS_CACERT" --product-id 1 \
        --image-root "$WORK/keys/trusted/image-root.json" --director-root "$WORK/keys/trusted/director-root.json" \
        --concurrency 64 --no-fsync --time-scale 600 --json "$@"
}
# A device polls every 6 s (3600 s simulated) until it runs 1.1.0.
update --poll 3600 --until-version aegis-app@1.1.0 --duration 300 >"$WORK/update-good.json"
fetch "/v1/deployments/$good"
eval "$(pick state='d["state"]' committed='sum(p["committed"] for p in d["progress"])' \
    waves='"\n".join("     wave %d (%3d %%): %4d devices, %4d committed, %d rolled back, %d failed" % (p["wave"],
        p["percent"], p["devices"], p["committed"], p["rolled_back"], p["failed"]) for p in d["progress"])')"
echo "$waves"
expect "deployment $good $state: committed on $committed devices" \
    '[ "$state" = completed ] && [ "$committed" -eq "$DEVICES" ]'

step "failure reporting: the crashes, uploaded over mutual TLS, grouped into buckets"
fetch '/v1/failures/buckets?limit=1000'
eval "$(pick crashes='sum(b["count"] for b in d["items"])' buckets='len(d["items"])' \
    top='"\n".join("     bucket %s: %-9s %-9s at %s: %3d crashes on %3d devices" % (b["id"], b["component"],
        b["reason"], b["pc"], b["count"], b["devices"]) for b in d["items"][:5])')"
echo "$top"
fetch '/v1/failures/crash-rates'
eval "$(pick hours='round(d["fleet"]["device_hours"])')"
expect "crash reports stored: $crashes (the devices made $made), in $buckets buckets; $hours device-hours" \
    '[ "$crashes" -eq "$made" ] && [ "$buckets" -ge 1 ] && [ "$buckets" -le 3 ]'

# The first wave: 5 % of 1,000 devices (about 50); smaller fleets (DEVICES) get a larger share, so that the
# service's halt rule (at least 10 finished attempts, 20 % of them failed or rolled back) can be met.
first=5
[ "$DEVICES" -ge 1000 ] || first=20
step "a bad release: app 1.2.0 crashes on every device that boots it; waves of $first %, 50 %, 100 %"
bad=$("$CTL" deployments create 1 "app 1.2.0" --images "$(sha "$WORK/app-1.2.0.img")" --waves "$first,50,100" \
    --soak 3600 --threshold 20 --min-attempts 10 -o 'jsonpath={.id}')
# A device offered nothing polls again after 60 s (36000 s simulated); the run ends 3 s after the last install,
# crash or rollback.
update --poll 36000 --crash 1@aegis-app:1.2.0 --idle-stop 3 --duration 180 >"$WORK/update-bad.json"
fetch "/v1/deployments/$bad"
eval "$(pick state='d["state"]' wave='d["current_wave"]' reason='d["reason"]' \
    rolled='d["progress"][0]["rolled_back"]' committed='sum(p["committed"] for p in d["progress"])' \
    later='sum(p["devices"] - p["waiting"] for p in d["progress"][1:])' \
    waves='"\n".join("     wave %d (%3d %%): %4d devices, %4d committed, %2d rolled back, %4d never offered it %s"
        % (p["wave"], p["percent"], p["devices"], p["committed"], p["rolled_back"], p["waiting"],
           p["reasons"] or "") for p in d["progress"])')"
printf '%s\n     %s\n' "$waves" "$reason"
fetch '/v1/audit?limit=100'
eval "$(pick actor='",".join(a["actor"] for a in d["items"] if a["action"] == "deployment.halt" and
    str(a["object_id"]) == "'"$bad"'")')"
expect "deployment $bad $state in wave $wave, by the service itself (audit: actor '$actor')" \
    '[ "$state" = halted ] && [ "$wave" -eq 1 ] && [ "$actor" = rollout ]'
expect "wave 1: $rolled devices rolled back by themselves, $committed committed; later waves: $later offered it" \
    '[ "$rolled" -ge 10 ] && [ "$committed" -eq 0 ] && [ "$later" -eq 0 ]'
fetch '/v1/failures/buckets?image_version=1.2.0&limit=1000'
eval "$(pick crashes='sum(b["count"] for b in d["items"])')"
fetch '/v1/failures/flags?limit=100'
eval "$(pick flags='len(d["items"])')"
expect "crash reports on app 1.2.0: $crashes; emerging-problem flags raised: $flags" '[ "$crashes" -ge "$rolled" ]'

dcpu=$(daemon_cpu)
step "stopping the service"
stop_daemon
expect "aegisd drained and exited with status $daemon_rc" '[ "$daemon_rc" = 0 ]'
elapsed=$(($(date +%s) - T0))
# The CPU time of every process of the demo (the daemon and its signer, the simulator, the clients), from the
# shell's `times` (its children's line): on a shared machine the wall time alone says little.
times >"$WORK/times"
cpu=$(awk 'NR == 2 { n = split($1 " " $2, t, /[ms ]+/); u = 0
    for (i = 1; i < n; i += 2) u += t[i] * 60 + t[i + 1]; printf "%.0f", u }' "$WORK/times")
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
echo
if [ "$elapsed" -gt 120 ]; then
    echo "demo: WARNING: this run took ${elapsed} s, more than the 120 s it should take; the machine's load" \
        "average (1, 5, 15 min): $load. The demo is CPU-bound: other work on the machine slows it." >&2
fi
if [ "$failed" -ne 0 ]; then
    echo "demo: $failed expectation(s) failed: $DEVICES devices, ${elapsed} s, ${cpu} s CPU (aegisd: ${dcpu} s)" >&2
    exit 1
fi
echo "demo: every expectation held: $DEVICES devices, ${elapsed} s, ${cpu} s CPU (aegisd and its signer:" \
    "${dcpu} s); load average $load"
