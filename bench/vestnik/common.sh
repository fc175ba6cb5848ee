# Sourced by the vestnik bench scripts: the harness settings plus our paths.
. "${BENCH_DIR:?set BENCH_DIR to the shared bench harness, e.g. \$PWD/../shared/bench}/common.sh"
VESTNIK_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VESTNIK_BIN=${VESTNIK_BIN:-$VESTNIK_REPO/bin/vestnik}
S=$BENCH_STATE/vestnik
VESTNIK_DB=${VESTNIK_BENCH_DB:-sqlite:$S/vestnik.db}
