#!/bin/bash
# Clear archives and offline marks so every run starts from the same state.
. "$(dirname "$0")/common.sh"
case "$VESTNIK_DB" in
  sqlite:*) /usr/bin/python3 - "${VESTNIK_DB#sqlite:}" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
c.executescript("DELETE FROM messages; DELETE FROM deliveries; DELETE FROM personal_contacts;")
c.commit()
PY
  ;;
  *) psql "$VESTNIK_DB" -qc "DELETE FROM messages; DELETE FROM deliveries; DELETE FROM personal_contacts;" ;;
esac
