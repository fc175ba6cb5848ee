#!/bin/bash
# The server's pid, if it runs.
. "$(dirname "$0")/common.sh"
f=$S/server.pid
[ -s "$f" ] && p=$(cat "$f") && [ -d "/proc/$p" ] && [ "$(cat /proc/$p/comm)" = vestnik ] && echo "$p"
exit 0
