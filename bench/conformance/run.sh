#!/bin/sh
# Play Prosody's scansion suite (../shared/conformance) against Vestnik.
#
#   bench/conformance/run.sh [scansion_run.py options, e.g. --only 'muc_*' -v]
#
# Builds vestnik from this checkout (or uses $VESTNIK), provisions every account the
# scripts log in with (each in a department of its own, so rosters start empty) and
# restarts `vestnik serve` on a fresh SQLite store before each script (--reset-cmd).
# Environment: CONFORMANCE (the suite's directory, default ../shared/conformance next to
# the repository, else /work/shared/conformance), WORK (scratch directory, default
# /tmp/vestnik-scansion), PORT (c2s, default 15322), HTTP (default 127.0.0.1:18581).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CONFORMANCE=${CONFORMANCE:-}
if [ -z "$CONFORMANCE" ]; then
	for d in "$repo/../shared/conformance" /work/shared/conformance; do
		[ -f "$d/scansion_run.py" ] && CONFORMANCE=$(cd "$d" && pwd) && break
	done
fi
[ -n "$CONFORMANCE" ] || { echo "run.sh: set CONFORMANCE to the scansion suite's directory" >&2; exit 2; }
WORK=${WORK:-/tmp/vestnik-scansion}
PORT=${PORT:-15322}
HTTP=${HTTP:-127.0.0.1:18581}
DOMAIN=example.test
PY=/usr/bin/python3
mkdir -p "$WORK"
if [ -z "${VESTNIK:-}" ]; then
	(cd "$repo" && go build -o "$WORK/vestnik" ./cmd/vestnik)
	VESTNIK="$WORK/vestnik"
fi

# The org: one department per account, password "password".
$PY "$CONFORMANCE/scansion_run.py" --list-accounts --domain "$DOMAIN" | $PY -c '
import json, sys
jids = [l.strip() for l in sys.stdin if "@" in l]
# muc_outcast_reason bans tybalt@, who never logs in: affiliations here are
# for employees, so he is one.
jids.append("tybalt@x")
deps, emps = [], []
for i, jid in enumerate(jids, 1):
    login = jid.split("@")[0]
    deps.append({"id": str(i), "name": "Dept " + login, "parent": None, "head": None})
    emps.append({"id": str(i), "login": login, "name": login, "departments": [str(i)], "password": "password"})
json.dump({"departments": deps, "employees": emps}, open(sys.argv[1], "w"))
' "$WORK/org.json"

# extdisco: the suite's external services (Prosody's external_services): STUN, two
# TURN servers with shared-secret credentials, two FTP servers with fixed ones.
cat > "$WORK/services.json" <<'EOS'
[
 {"type": "stun", "transport": "udp", "host": "default.example", "port": 9876},
 {"type": "turn", "transport": "udp", "host": "default.example", "port": 9876, "secret": "scansion-secret-1"},
 {"type": "turn", "transport": "udp", "host": "default.example", "port": 9876, "secret": "foo"},
 {"type": "ftp", "transport": "tcp", "host": "default.example", "port": 2121, "username": "john", "password": "password"},
 {"type": "ftp", "transport": "tcp", "host": "ftp.example.com", "port": 21, "username": "john", "password": "password"}
]
EOS

# The server configuration the scripts assume: admin@ is an admin, the suite's contact
# addresses (server_contact_info), its external services (extdisco) and upload limits
# (http_upload: 10 MB, text/plain and image/* only).
cat > "$WORK/reset.sh" <<EOS
#!/bin/sh
cd "$WORK"
if [ -f pid ]; then kill \$(cat pid) 2>/dev/null; while kill -0 \$(cat pid) 2>/dev/null; do sleep 0.05; done; fi
rm -rf data && mkdir data
"$VESTNIK" org import org.json --db sqlite:./data/v.db >/dev/null 2>&1 || exit 1
"$VESTNIK" serve --domain $DOMAIN --db sqlite:./data/v.db --http $HTTP --c2s 127.0.0.1:$PORT \\
	--data ./data --demo=off --admins admin --external-services services.json --upload-max-size 10000000 --upload-allowed-types 'text/plain,image/*' \\
	--admin-contact mailto:admin@$DOMAIN,xmpp:admin@$DOMAIN \\
	--contact-addresses abuse=mailto:abuse@$DOMAIN,abuse=xmpp:abuse@$DOMAIN,feedback=http://$DOMAIN/feedback.html,feedback=mailto:feedback@$DOMAIN,feedback=xmpp:feedback@$DOMAIN,sales=xmpp:sales@$DOMAIN,security=xmpp:security@$DOMAIN,status=gopher://status.$DOMAIN,support=https://$DOMAIN/support.html,support=xmpp:support@$DOMAIN \\
	\${SERVE_EXTRA:-} >>server.log 2>&1 &
echo \$! > pid
for i in \$(seq 1 100); do
	$PY -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && exit 0
	sleep 0.1
done
exit 1
EOS
chmod +x "$WORK/reset.sh"
: > "$WORK/server.log"
rc=0
$PY "$CONFORMANCE/scansion_run.py" --host 127.0.0.1 --port "$PORT" --domain "$DOMAIN" \
	--reset-cmd "$WORK/reset.sh" --json "$WORK/result.json" "$@" || rc=$?
[ -f "$WORK/pid" ] && kill "$(cat "$WORK/pid")" 2>/dev/null || true
exit $rc
