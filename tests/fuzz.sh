#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (default 5s): `make test`
# (through tests/run.sh) runs them briefly, `make fuzz` for longer
# (FUZZTIME=60s). A failing input is written to the package's
# testdata/fuzz/<Target>/: check it in with the fix as a regression seed.
# The layers below the C boundary fuzz without cgo, like they test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5s}"
targets=(
	"0 ./internal/cloudhsmcli/ FuzzCommandLine"
	"0 ./token/ FuzzSplitPIN"
	"0 ./token/ FuzzParseConfig"
	"0 ./token/attrs/ FuzzDecodeTemplate"
	"0 ./token/attrs/ FuzzTemplateRules"
	"0 ./token/attrs/ FuzzKeyFromTemplate"
	"0 ./token/store/ FuzzUserRecord"
	"0 ./token/store/ FuzzObjectRecord"
	"0 ./mechanisms/ FuzzMechanismParams"
	"0 ./mechanisms/ FuzzMLDSAVerifyMu"
	"0 ./internal/cloudhsmcli/ FuzzParseFilter"
	"0 ./token/audit/ FuzzArchive"
	"0 ./token/quorum/ FuzzQuorumFiles"
	"0 ./token/metrics/ FuzzHeader"
	"1 ./pkcs11/ FuzzMechanism"
	"1 ./pkcs11/ FuzzTemplate"
	"1 ./pkcs11/ FuzzMessageParams"
)
# Every func Fuzz* in the tree must be listed above.
listed=$(printf '%s\n' "${targets[@]}" | awk '{print $3}' | sort)
found=$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)\(f \*testing\.F\)' --include='*_test.go' . | sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | sort)
if [ "$listed" != "$found" ]; then
	echo "tests/fuzz.sh: the target list differs from the tree's Fuzz functions:" >&2
	diff <(echo "$listed") <(echo "$found") >&2 || true
	exit 1
fi
# One fuzz-instrumented test binary per package (go test -c -fuzz), not
# one per target: building and linking it again took longer than the
# 5 s of fuzzing (528 s for 17 targets at load ~20). Each target
# then runs as `go test -fuzz` runs it: in the package's directory (seed
# corpus and new failing inputs in its testdata/fuzz/), with the go
# command's flags for it (-test.paniconexit0, the default 10-minute
# -test.timeout, the fuzz cache under $GOCACHE/fuzz/<import path>).
bindir=$(mktemp -d "${TMPDIR:-/tmp}/gohsm-fuzz.XXXXXX")
trap 'rm -rf "$bindir"' EXIT
fuzzcache="$(go env GOCACHE)/fuzz"
declare -A importpath
for t in "${targets[@]}"; do
	read -r cgo pkg name <<<"$t"
	bin="$bindir/$(printf '%s' "$pkg" | tr -c 'A-Za-z0-9' _)cgo$cgo.test"
	if [ -z "${importpath[$bin]:-}" ]; then
		CGO_ENABLED=$cgo go test -c -fuzz "^${name}\$" -o "$bin" "$pkg"
		importpath[$bin]=$(CGO_ENABLED=$cgo go list -f '{{.ImportPath}}' "$pkg")
	fi
	echo "fuzz: $pkg $name for $FUZZTIME"
	(cd "$pkg" && CGO_ENABLED=$cgo "$bin" -test.paniconexit0 -test.timeout=10m0s -test.run "^${name}\$" \
		-test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" -test.fuzzcachedir "$fuzzcache/${importpath[$bin]}")
done
