#!/bin/sh
# `make run`: on first run creates a local dev PKI, a config, a database and a dev tenant under var/,
# then runs aegisd in the foreground on https://127.0.0.1:$PORT (default 8443).
set -eu
BUILD=${1:-build}
VAR=var
PORT=${PORT:-8443}
case "$PORT" in
'' | *[!0-9]*) echo "make run: PORT must be a number, not '$PORT'" >&2; exit 2 ;;
esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    echo "make run: PORT must be 1-65535, not $PORT" >&2
    exit 2
fi
URL=https://127.0.0.1:$PORT
CTL="$BUILD/aegisctl --data-dir $VAR"
mkdir -p "$VAR"
chmod 0700 "$VAR"
if [ ! -f "$VAR/pki/root.crt" ]; then
    $CTL pki init --hosts localhost,127.0.0.1,::1
fi
if [ ! -f "$VAR/aegisd.conf" ]; then
    sed -e "s|^data_dir = .*|data_dir = $VAR|" deploy/aegisd.conf > "$VAR/aegisd.conf"
fi
$CTL migrate
if [ ! -f "$VAR/dev-admin.token" ]; then
    if ! $CTL tenant create dev --token-out "$VAR/dev-admin.token"; then
        echo "note: tenant 'dev' exists but $VAR/dev-admin.token is gone; mint one with: $CTL tenant token dev --token-out $VAR/dev-admin.token" >&2
    fi
fi
# The token as an HTTP header line, for `curl -H @FILE`: a token on a command line is visible to every user
# (ps, /proc/PID/cmdline); a file of mode 0600 is not. Rewritten whenever the token file is newer.
if [ -f "$VAR/dev-admin.token" ] && [ ! "$VAR/dev-admin.header" -nt "$VAR/dev-admin.token" ]; then
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$VAR/dev-admin.token")" >"$VAR/dev-admin.header")
fi
cat <<MSG

  Aegis dev instance on $URL
  config      $VAR/aegisd.conf
  database    $VAR/aegis.db
  PKI         $VAR/pki (root CA: $VAR/pki/root.crt)
  dev token   $VAR/dev-admin.token (admin of tenant 'dev'; dev only, keep it private)
              $VAR/dev-admin.header: the same as an "Authorization: Bearer" line, for curl -H @FILE

  Try:
    curl --cacert $VAR/pki/root.crt -H @$VAR/dev-admin.header $URL/v1/tenant
    $BUILD/aegisctl --server $URL --cacert $VAR/pki/root.crt --token-file $VAR/dev-admin.token products list
    curl -s --cacert $VAR/pki/root.crt $URL/metrics | head
  A simulated fleet: README.md, "A simulated fleet" (with AEGIS_SERVER=$URL).

MSG
exec "$BUILD/aegisd" --config "$VAR/aegisd.conf" --listen "127.0.0.1:$PORT"
