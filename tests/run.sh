#!/usr/bin/env bash
# Runs every test: the CGO-free packages, then the tests that drive the
# built libgohsm.so (C ABI drivers, Go end-to-end, pkcs11-tool). `make test`
# builds the library first.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/deps.sh
export GOHSM_LIB="$PWD/build/libgohsm.so"
export GOHSM_CLI="$PWD/build/gohsm"
# cloudhsm-cli: tests/operator (the operator session, in ./tests/... below).
export GOHSM_CHCLI="$PWD/build/cloudhsm-cli"
test -f "$GOHSM_LIB" || { echo "tests/run.sh: $GOHSM_LIB missing: run make test" >&2; exit 1; }
# Layers below the C boundary build and test without cgo.
CGO_ENABLED=0 go test -count=1 ./internal/... ./mechanisms/... ./token/...
# With cgo the mechanisms' private-key operations run in libcrypto
# (internal/ossl): the same suite again on that path.
go test -count=1 ./internal/ossl/... ./mechanisms/...
# The same layers under the race detector: the concurrent paths below the
# C boundary (session table, key caches, HMAC state pools, libcrypto keys
# and their cleanups). The allocation-count tests skip here (the detector
# allocates), having run above.
go test -race -count=1 ./internal/ossl/... ./mechanisms/... ./token/...
go vet ./...
# The library without the PostgreSQL store (make build/libgohsm-nopg.so):
# its stand-in package refuses every use, and the configuration says so.
go test -count=1 -tags nopostgres ./token/store/postgres/
# Each Go fuzz target for a few seconds (tests/fuzz.sh; `make fuzz` runs
# them longer); the seed corpora in testdata/fuzz also run as plain tests
# in the go test runs above and below.
FUZZTIME=5s ./tests/fuzz.sh
go test -count=1 -timeout 15m ./pkcs11/... ./cmd/... ./tests/...
# The end-to-end tests again with each test's token in a PostgreSQL
# database (issue 17, D8: GOHSM_TEST_STORE chooses the backend of the test
# helpers that write slot configurations; pgtest starts the server).
GOHSM_TEST_STORE=postgres go test -count=1 -timeout 10m ./tests/e2e/
# And the token package's multi-process tests (12 processes logging in at
# once against the lockout threshold) on PostgreSQL.
GOHSM_TEST_STORE=postgres CGO_ENABLED=0 go test -count=1 ./token/ -run '^TestParallel(WrongLoginsStopAtThreshold|RightLoginsAllGetIn)$'
