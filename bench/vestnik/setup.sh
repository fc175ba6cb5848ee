#!/bin/bash
# Idempotent: build, certificate, accounts user1..user$BENCH_USERS (password
# $BENCH_PASS) in departments of 10 through an HR import, then start.
set -euo pipefail
. "$(dirname "$0")/common.sh"
mkdir -p "$S"
(cd "$VESTNIK_REPO" && go build -o "$VESTNIK_BIN" ./cmd/vestnik)
make_cert "$S/certs"
/usr/bin/python3 - "$BENCH_USERS" "$BENCH_PASS" > "$S/org.json" <<'PY'
import json, sys
n, pw = int(sys.argv[1]), sys.argv[2]
deps = [{"id": "d0", "name": "Bench", "parent": None, "head": None}]
emps = []
for i in range(1, n + 1):
    d = f"d{(i - 1) // 10 + 1}"
    if (i - 1) % 10 == 0:
        deps.append({"id": d, "name": f"Dept {d}", "parent": "d0", "head": str(i)})
    emps.append({"id": str(i), "login": f"user{i}", "name": f"User {i}",
                 "departments": [d], "password": pw})
print(json.dumps({"departments": deps, "employees": emps}))
PY
"$VESTNIK_BIN" org import "$S/org.json" --db "$VESTNIK_DB" >&2
"$(dirname "$0")/start.sh"
