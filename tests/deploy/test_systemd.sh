#!/bin/sh
# make systemd-test: aegisd as an operator runs it, under a real systemd (issue 15 items 1 and 2).
#   1. `make install DESTDIR=... PREFIX=/usr` on this machine: the files land where they should, the unit's paths
#      follow PREFIX, a second install keeps an edited configuration, every docs/man page is installed;
#      `make uninstall` removes all of it but the configuration.
#   2. A container booting systemd (podman, ../shared/RECIPES.md) with the checkout bind-mounted read-only:
#      `make install` in it, systemd-sysusers/tmpfiles, the PKI and a tenant made as the aegis user, then
#      `systemctl start aegisd` returns once READY=1 came (Type=notify) and the unit is active (running) with
#      the daemon's STATUS=; aegisd, aegis-sigsup and aegis-signer run as aegis with the keys isolated;
#      a simulated device attests against it; `systemctl reload` (RELOADING=1 ... READY=1: same main PID,
#      STATUS= says reloaded, the journal says what was reloaded); the watchdog (WatchdogSec=2 through a
#      drop-in: pings keep it alive); `systemctl stop` with a request in flight (a half-sent body): the
#      drain in the journal, the request answered, exit status 0, no process left; `systemd-analyze verify` silent; `systemd-analyze security` exposure below 2.0.
# The container is privileged: systemd needs to make the namespaces the unit's hardening asks for. Its image
# (tests/deploy/systemd.Containerfile) is built once and kept, tagged by the file's hash.
# Usage: sh tests/deploy/test_systemd.sh [BUILD]   (BUILD: a build directory inside the checkout, built)
set -eu
BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"
for b in aegisd aegisctl aegis-sim; do
    [ -x "$BUILD/$b" ] || { echo "systemd-test: $BUILD/$b missing: make all first" >&2; exit 2; }
done
case "$BUILD" in /*) echo "systemd-test: BUILD must be relative to the checkout" >&2; exit 2 ;; esac

CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }
fail() {
    echo "FAIL - $*" >&2
    if [ -n "${C:-}" ] && podman container exists "$C" 2>/dev/null; then
        echo "--- journal of aegisd.service (last 40 lines)" >&2
        podman exec "$C" journalctl -u aegisd --no-pager 2>&1 | tail -40 >&2 || true
    fi
    echo "systemd-test: FAILED after $CHECKS checks" >&2
    exit 1
}

# --- 1. make install with DESTDIR and PREFIX, here ---
STAGE=$(mktemp -d /tmp/aegis-sysd-stage.XXXXXX)
C=""
cleanup() {
    rm -rf "$STAGE"
    if [ -n "$C" ]; then podman rm -f -t 2 "$C" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
make -s --no-print-directory install BUILD="$BUILD" DESTDIR="$STAGE" PREFIX=/usr >"$STAGE.log" 2>&1 \
    || { cat "$STAGE.log" >&2; rm -f "$STAGE.log"; fail "make install DESTDIR=... PREFIX=/usr"; }
rm -f "$STAGE.log"
for f in usr/sbin/aegisd usr/bin/aegisctl usr/bin/aegis-sim usr/lib/systemd/system/aegisd.service \
    usr/lib/sysusers.d/aegis.conf usr/lib/tmpfiles.d/aegis.conf etc/aegis/aegisd.conf \
    usr/share/doc/aegis/aegisd.conf usr/share/bash-completion/completions/aegisctl \
    usr/share/zsh/site-functions/_aegisctl; do
    [ -s "$STAGE/$f" ] || fail "make install: /$f missing or empty"
done
[ -x "$STAGE/usr/sbin/aegisd" ] || fail "make install: aegisd not executable"
grep -qx 'ExecStart=/usr/sbin/aegisd --config /etc/aegis/aegisd.conf' "$STAGE/usr/lib/systemd/system/aegisd.service" \
    || fail "make install: the unit's ExecStart does not follow PREFIX=/usr"
grep -q '/usr/local' "$STAGE/usr/lib/systemd/system/aegisd.service" && fail "make install: /usr/local left in the unit"
grep -qx 'key_isolation = required' "$STAGE/etc/aegis/aegisd.conf" || fail "installed config: key_isolation"
head -1 "$STAGE/usr/share/zsh/site-functions/_aegisctl" | grep -q '^#compdef aegisctl' || fail "zsh completion"
grep -q 'complete .*aegisctl' "$STAGE/usr/share/bash-completion/completions/aegisctl" || fail "bash completion"
for m in docs/man/*.1 docs/man/*.8; do
    [ -e "$m" ] || continue
    sec=${m##*.}
    cmp -s "$m" "$STAGE/usr/share/man/man$sec/${m##*/}" || fail "make install: $m not installed"
done
echo "# an operator's edit" >>"$STAGE/etc/aegis/aegisd.conf"
make -s --no-print-directory install BUILD="$BUILD" DESTDIR="$STAGE" PREFIX=/usr >/dev/null 2>&1 \
    || fail "second make install"
tail -1 "$STAGE/etc/aegis/aegisd.conf" | grep -qx "# an operator's edit" || fail "make install overwrote the config"
cmp -s deploy/logrotate/aegis "$STAGE/etc/logrotate.d/aegis" || fail "make install: /etc/logrotate.d/aegis"
ok "make install DESTDIR PREFIX=/usr: binaries, unit, sysusers, tmpfiles, logrotate, config (kept on reinstall), completions, man pages"
make -s --no-print-directory uninstall BUILD="$BUILD" DESTDIR="$STAGE" PREFIX=/usr >/dev/null 2>&1 \
    || fail "make uninstall DESTDIR=... PREFIX=/usr"
LEFT=$(cd "$STAGE" && find . ! -type d | sort | tr '\n' ' ')
[ "$LEFT" = "./etc/aegis/aegisd.conf " ] || fail "make uninstall left: $LEFT"
ok "make uninstall: everything install put is gone but the configuration"

# --- 2. a container booting systemd ---
. tests/deploy/podman-env.sh || exit 1
TAG=$(sha256sum tests/deploy/systemd.Containerfile | cut -c1-12)
IMAGE=localhost/aegis-sysd-systemd:$TAG
if ! podman image exists "$IMAGE"; then
    echo "systemd-test: building $IMAGE (Debian packages, about a minute)"
    podman build -q -t "$IMAGE" -f tests/deploy/systemd.Containerfile tests/deploy >"$STAGE/build.log" 2>&1 \
        || { cat "$STAGE/build.log" >&2; fail "podman build $IMAGE"; }
fi
C=aegis-sysd-test-$$
podman run -d --name "$C" --systemd=always --privileged -v "$SRC:/src:ro" "$IMAGE" >/dev/null \
    || fail "podman run $IMAGE"
cx() { podman exec "$C" sh -c "$1"; }
i=0
until state=$(podman exec "$C" systemctl is-system-running 2>/dev/null) || [ "$state" = degraded ]; do
    i=$((i + 1))
    [ $i -le 120 ] || fail "systemd in the container not running after 60 s (state: $state)"
    sleep 0.5
done
ok "systemd booted in container $C ($state)"

cx "make -s --no-print-directory -C /src install BUILD=$BUILD" >/dev/null || fail "make install in the container"
cx 'systemd-sysusers && systemd-tmpfiles --create aegis.conf && systemctl daemon-reload' >/dev/null 2>&1 \
    || fail "systemd-sysusers / tmpfiles / daemon-reload"
[ "$(cx 'stat -c %U:%a /var/lib/aegis /var/log/aegis' | tr '\n' ' ')" = "aegis:700 aegis:700 " ] \
    || fail "the state and log directories are not aegis's, 0700"
cx 'runuser -u aegis -- aegisctl --data-dir /var/lib/aegis pki init --hosts localhost,127.0.0.1 &&
    runuser -u aegis -- aegisctl --data-dir /var/lib/aegis tenant create acme --token-out /var/lib/aegis/admin.token' \
    >/dev/null || fail "pki init / tenant create as aegis"
R=$(cx 'aegisctl --config /etc/aegis/aegisd.conf migrate 2>&1; echo "exit $?"')
echo "$R" | grep -q 'belongs to aegis, not root.*runuser -u aegis -- aegisctl' && echo "$R" | grep -qx 'exit 4' \
    || fail "root's aegisctl on /var/lib/aegis was not refused: $R"
ok "make install in the container; user aegis, /var/lib/aegis and /var/log/aegis 0700; PKI and tenant made as aegis; root's aegisctl refused there"

# Type=notify: `systemctl start` returns only once READY=1 came (or fails).
timeout 90 podman exec "$C" systemctl start aegisd || fail "systemctl start aegisd"
show() { cx "systemctl show -p $1 --value aegisd"; }
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "not active (running)"
[ "$(show Type)" = notify ] || fail "the unit is not Type=notify"
[ "$(show StatusText)" = "serving HTTPS on port 8443" ] || fail "STATUS= after start: '$(show StatusText)'"
cx 'systemctl status aegisd --no-pager' | grep -q 'Active: active (running)' || fail "systemctl status"
PID=$(show MainPID)
cx "journalctl -u aegisd --no-pager" | grep -q 'msg="keys isolated" mechanism=landlock' \
    || fail "aegisd did not isolate the keys (key_isolation = required)"
for p in aegis-sigsup aegis-signer; do
    [ "$(cx "ps -o user= -C $p" | tr -d ' \n')" = aegis ] || fail "$p is not running as aegis"
done
[ "$(cx "ps -o user= -p $PID" | tr -d ' ')" = aegis ] || fail "aegisd is not running as aegis"
ok "systemctl start: active (running) through READY=1, STATUS='serving HTTPS on port 8443', aegisd and its signer as aegis, keys isolated"

# A simulated device attests, as in the README's fleet: its key imported, the images' reference values.
cx 'set -e; export AEGIS_SERVER=https://127.0.0.1:8443 AEGIS_CACERT=/var/lib/aegis/pki/root.crt
    AEGIS_TOKEN="$(cat /var/lib/aegis/admin.token)"; export AEGIS_TOKEN
    mkdir -m 0755 /tmp/sim && cd /tmp/sim
    aegis-sim provision --devices 1 --dir fleet && chmod 0755 fleet && chmod 0644 fleet/refvals.json
    aegisctl products create thermostat && aegisctl groups create field --product 1
    aegisctl devices import fleet/import.json --group 1
    runuser -u aegis -- aegisctl --data-dir /var/lib/aegis refvals import /tmp/sim/fleet/refvals.json
    aegis-sim run --dir fleet --server "$AEGIS_SERVER" --cacert "$AEGIS_CACERT"' >"$STAGE/sim.log" 2>&1 \
    || { cat "$STAGE/sim.log" >&2; fail "the simulated device's setup or run"; }
grep -q 'attest  *1: pass 1' "$STAGE/sim.log" || { cat "$STAGE/sim.log" >&2; fail "the device did not attest"; }
cx 'AEGIS_TOKEN="$(cat /var/lib/aegis/admin.token)" aegisctl --server https://127.0.0.1:8443 \
    --cacert /var/lib/aegis/pki/root.crt attestations list --result pass' | grep -q ' pass ' \
    || fail "no passed attestation in the service's records"
ok "a simulated device attested against the service (certificate issued through the signer)"

# Reload: RELOADING=1 then READY=1; the same process, what was reloaded in the journal and STATUS=.
# systemd 252 lets `systemctl reload` return once /bin/kill exited, maybe before aegisd's READY=1: poll (20 s).
timeout 60 podman exec "$C" systemctl reload aegisd || fail "systemctl reload aegisd"
i=0
until [ "$(show ActiveState)/$(show SubState)" = active/running ] && case "$(show StatusText)" in
    *'; reloaded') true ;; *) false ;; esac; do
    i=$((i + 1))
    [ $i -le 40 ] || fail "20 s after the reload: $(show ActiveState)/$(show SubState), STATUS='$(show StatusText)'"
    sleep 0.5
done
[ "$(show MainPID)" = "$PID" ] || fail "the reload restarted aegisd"
[ "$(show StatusText)" = "serving HTTPS on port 8443; reloaded" ] || fail "STATUS= after reload: '$(show StatusText)'"
J=$(cx "journalctl -u aegisd --no-pager")
for line in 'Reloading aegisd.service' 'msg="log reopened"' 'msg="configuration reloaded" log_level=info' \
    'msg="TLS certificate renewed"' 'Reloaded aegisd.service'; do
    echo "$J" | grep -qF "$line" || fail "the journal lacks '$line' after the reload"
done
ok "systemctl reload: same main PID, log reopened, configuration and TLS certificate reloaded, STATUS says so"

# The watchdog: WatchdogSec=2 (a drop-in) makes aegisd ping every second; 5 s later it still runs, pinged.
cx 'mkdir -p /etc/systemd/system/aegisd.service.d && printf "[Service]\nWatchdogSec=2\n" \
    > /etc/systemd/system/aegisd.service.d/watchdog.conf && systemctl daemon-reload' || fail "watchdog drop-in"
timeout 90 podman exec "$C" systemctl restart aegisd || fail "systemctl restart aegisd (WatchdogSec=2)"
PID=$(show MainPID)
W0=$(show WatchdogTimestampMonotonic)
sleep 5
[ "$(show ActiveState)/$(show SubState)/$(show MainPID)" = "active/running/$PID" ] \
    || fail "aegisd did not survive WatchdogSec=2"
[ "$(show WatchdogTimestampMonotonic)" -gt "$W0" ] || fail "no WATCHDOG=1 ping in 5 s"
cx "journalctl -u aegisd --no-pager" | grep -q 'Watchdog timeout' && fail "a watchdog timeout in the journal"
cx 'rm -r /etc/systemd/system/aegisd.service.d && systemctl daemon-reload' || fail "removing the drop-in"
ok "watchdog: WATCHDOG=1 pings keep aegisd alive under WatchdogSec=2"

# Stop: SIGTERM to aegisd alone (KillMode=mixed), the drain, exit 0, no process left. A request is in flight
# across it: a POST whose body is half sent (the host's python3 in the container's network namespace). aegisd
# must wait for it (drain_timeout, 10 s), answer it, and only then exit.
podman exec "$C" cat /var/lib/aegis/pki/root.crt >"$STAGE/root.crt" && \
    podman exec "$C" cat /var/lib/aegis/admin.token >"$STAGE/admin.token" || fail "reading the CA and token"
cat >"$STAGE/slow.py" <<'PY'
import json, os, socket, ssl, sys, time
stage = sys.argv[1]
ctx = ssl.create_default_context(cafile=os.path.join(stage, "root.crt"))
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 8443), timeout=30), server_hostname="localhost")
token = open(os.path.join(stage, "admin.token")).read().strip()
body = json.dumps({"name": "in-flight-at-stop"}).encode()
half = len(body) // 2
s.sendall(b"POST /v1/products HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token.encode()
          + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:half])
print("sent", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(stage, "go")):
    if time.monotonic() > deadline:
        sys.exit("no go in 30 s")
    time.sleep(0.05)
s.sendall(body[half:])
resp = b""
while b"\r\n\r\n" not in resp:
    chunk = s.recv(4096)
    if not chunk:
        break
    resp += chunk
print(resp.split(b"\r\n", 1)[0].decode(), flush=True)
PY
CPID=$(podman inspect -f '{{.State.Pid}}' "$C")
nsenter -t "$CPID" -n python3 "$STAGE/slow.py" "$STAGE" >"$STAGE/slow.out" 2>&1 &
SLOW=$!
i=0
until grep -qx sent "$STAGE/slow.out"; do
    i=$((i + 1))
    [ $i -le 40 ] || fail "the slow request did not start: $(cat "$STAGE/slow.out")"
    sleep 0.5
done
sleep 0.5 # aegisd reads the request's head
timeout 60 podman exec "$C" systemctl stop aegisd >"$STAGE/stop.out" 2>&1 &
STOP=$!
i=0
until cx "journalctl -u aegisd --no-pager -n 20" | grep -qE 'msg="shutting down: draining requests" signal=15 active=[1-9]'; do
    i=$((i + 1))
    [ $i -le 20 ] || fail "no drain with the request in flight in the journal"
    sleep 0.5
done
sleep 1
[ "$(show ActiveState)" = deactivating ] || fail "aegisd did not wait for the request in flight: $(show ActiveState)"
touch "$STAGE/go"
wait "$SLOW" || fail "the slow request's client: $(cat "$STAGE/slow.out")"
grep -q '^HTTP/1.1 201' "$STAGE/slow.out" || fail "the request in flight at the stop was answered: $(cat "$STAGE/slow.out")"
wait "$STOP" || fail "systemctl stop aegisd: $(cat "$STAGE/stop.out")"
[ "$(show ActiveState)/$(show Result)/$(show ExecMainStatus)" = inactive/success/0 ] \
    || fail "stop: $(show ActiveState)/$(show Result)/exit $(show ExecMainStatus)"
J=$(cx "journalctl -u aegisd --no-pager -n 20")
for line in 'msg="shutting down: draining requests" signal=15' 'msg=stopped' 'Deactivated successfully'; do
    echo "$J" | grep -qF "$line" || fail "the journal lacks '$line' at the stop"
done
echo "$J" | grep -qE 'SIGKILL|Killing process' && fail "systemd had to kill something at the stop"
cx 'pgrep -u aegis' >/dev/null && fail "processes of aegis left after the stop"
ok "systemctl stop: a request in flight answered (201) during the drain, exit status 0, signer stopped by aegisd, nothing killed"

# The unit, as installed, checked by systemd itself; man pages too when the checkout has aegisd(8).
MAN=no
[ -f docs/man/aegisd.8 ] && MAN=yes
V=$(cx "systemd-analyze verify --man=$MAN /usr/local/lib/systemd/system/aegisd.service 2>&1") \
    || fail "systemd-analyze verify: $V"
[ -z "$V" ] || fail "systemd-analyze verify printed: $V"
ok "systemd-analyze verify (--man=$MAN): no complaint"

S=$(cx 'systemd-analyze security --no-pager aegisd 2>&1') || true
SCORE=$(echo "$S" | sed -n 's/.*Overall exposure level for aegisd.service: \([0-9.]*\).*/\1/p')
[ -n "$SCORE" ] || fail "systemd-analyze security: no score in: $S"
awk -v s="$SCORE" 'BEGIN { exit !(s < 2.0) }' || { echo "$S" >&2; fail "exposure $SCORE, not below 2.0"; }
ok "systemd-analyze security: exposure $SCORE (below 2.0)"
echo "systemd-test: $CHECKS checks passed; exposure level $SCORE"
