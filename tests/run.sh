#!/usr/bin/env bash
# Runs every test: the CGO-free packages, then the tests that drive the
# built libraries (C ABI drivers, Go end-to-end, pkcs11-tool). `make test`
# builds them first.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/deps.sh
# The default library (no PostgreSQL store), and the full one, which the
# tests on a PostgreSQL store load (internal/testenv.PGLibrary).
export GOHSM_LIB="$PWD/build/libgohsm.so"
export GOHSM_PG_LIB="$PWD/build/libgohsm-pg.so"
export GOHSM_CLI="$PWD/build/gohsm"
# cloudhsm-cli: tests/operator (the operator session, in ./tests/... below).
export GOHSM_CHCLI="$PWD/build/cloudhsm-cli"
for f in "$GOHSM_LIB" "$GOHSM_PG_LIB"; do
	test -f "$f" || { echo "tests/run.sh: $f missing: run make test" >&2; exit 1; }
done

# Two lanes at once (docs/building.md, "Test-suite time"). The background
# lane holds steps that need nothing of the others: the fuzz targets
# (a fixed time each) and the PostgreSQL runs. It runs in a process group
# of its own (set -m), its output in a file printed when it ends. The run
# fails if either lane fails; if the foreground lane fails first, the
# background lane is stopped and its output so far printed.
set -m
lane_log=$(mktemp "${TMPDIR:-/tmp}/gohsm-run-lane.XXXXXX")
lane_pid=
stop_lane() {
	local rc=$?
	if [ -n "$lane_pid" ]; then
		kill -TERM -- "-$lane_pid" 2>/dev/null || true
		wait "$lane_pid" 2>/dev/null || true
		echo "tests/run.sh: stopped the background lane (the foreground failed); its output so far:" >&2
		cat "$lane_log" >&2
	fi
	rm -f "$lane_log"
	exit "$rc"
}
trap stop_lane EXIT
(
	set -euo pipefail
	# Each Go fuzz target for a few seconds (tests/fuzz.sh; `make fuzz`
	# runs them longer); the seed corpora in testdata/fuzz also run as
	# plain tests in the go test runs of the foreground lane.
	FUZZTIME=5s ./tests/fuzz.sh
	# The end-to-end tests again with each test's token in a PostgreSQL
	# database (issue 17, D8: GOHSM_TEST_STORE chooses the backend of the
	# test helpers that write slot configurations; pgtest starts the
	# server).
	GOHSM_TEST_STORE=postgres go test -count=1 -timeout 10m ./tests/e2e/
	# And the token package's multi-process tests (12 processes logging
	# in at once against the lockout threshold) on PostgreSQL.
	GOHSM_TEST_STORE=postgres CGO_ENABLED=0 go test -count=1 ./token/ -run '^TestParallel(WrongLoginsStopAtThreshold|RightLoginsAllGetIn)$'
) >"$lane_log" 2>&1 &
lane_pid=$!

# The foreground lane. Layers below the C boundary build and test
# without cgo.
CGO_ENABLED=0 go test -count=1 ./internal/... ./mechanisms/... ./token/...
# With cgo the mechanisms' private-key operations run in libcrypto
# (internal/ossl): the same suite again on that path.
go test -count=1 ./internal/ossl/... ./mechanisms/...
# The same layers under the race detector: the concurrent paths below the
# C boundary (session table, key caches, HMAC state pools, libcrypto keys
# and their cleanups). The allocation-count tests skip here (the detector
# allocates), having run above, and so do a few single-goroutine tests
# (known-answer vectors, bulk writes) that run in the passes above.
go test -race -count=1 ./internal/ossl/... ./mechanisms/... ./token/...
go vet ./...
# The default library's PostgreSQL stand-in (-tags nopostgres, as
# build/libgohsm.so is built): it refuses every use, and the
# configuration says so.
go test -count=1 -tags nopostgres ./token/store/postgres/
go test -count=1 -timeout 15m ./pkcs11/... ./cmd/... ./tests/...

# The background lane's end: its output and its exit status.
lane_rc=0
wait "$lane_pid" || lane_rc=$?
lane_pid=
echo "=== tests/run.sh: background lane (fuzz targets, PostgreSQL runs): exit status $lane_rc ==="
cat "$lane_log"
if [ "$lane_rc" -ne 0 ]; then
	echo "tests/run.sh: the background lane failed (exit status $lane_rc)" >&2
	exit "$lane_rc"
fi
