#!/bin/bash
# Stop the server started by start.sh, by the pid it recorded.
. "$(dirname "$0")/common.sh"
p=$("$(dirname "$0")/pid.sh"); [ -n "$p" ] || exit 0
kill -TERM "$p"
for i in $(seq 50); do [ -d "/proc/$p" ] || break; sleep 0.2; done
wait_port_free 10
