#!/bin/bash
# Start vestnik in the background, pinned to $SERVER_CPUS when PIN=1.
set -euo pipefail
. "$(dirname "$0")/common.sh"
[ -n "$("$(dirname "$0")/pid.sh")" ] && exit 0
o=$(port_owner); [ -z "$o" ] || { echo "port $XMPP_PORT is held by pid $o" >&2; exit 1; }
pin=(); [ "$PIN" = 1 ] && pin=(taskset -c "$SERVER_CPUS")
"${pin[@]}" nohup "$VESTNIK_BIN" serve --domain "$XMPP_DOMAIN" \
  --c2s "$XMPP_HOST:$XMPP_PORT" --http "${VESTNIK_BENCH_HTTP:-127.0.0.1:18980}" --data "$S" --demo=off \
  --db "$VESTNIK_DB" --tls-cert "$S/certs/$XMPP_DOMAIN.crt" --tls-key "$S/certs/$XMPP_DOMAIN.key" ${VESTNIK_SERVE_FLAGS:-} \
  > "$S/server.log" 2>&1 &
echo $! > "$S/server.pid"
wait_port 30 || { echo "vestnik did not open port $XMPP_PORT" >&2; tail -20 "$S/server.log" >&2; exit 1; }
