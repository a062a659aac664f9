package mechanisms

import (
	"testing"

	"gohsm/internal/testenv"
)

// skipVectorsUnderRace skips a known-answer test in a build with the race
// detector. Such a test proves its vectors' answers, which the CGO-free
// and cgo passes of tests/run.sh already check; under the detector it
// proves nothing more, because each of its (parallel) subtests works on
// keys of its own in one goroutine, the code it runs uses no unsafe
// pointer (checkptr, which -race turns on, has nothing to check), and the
// package state those subtests share is built lazily once: TestTablesLazy
// and TestZetasLazy race those first uses on purpose, and run under the
// detector. took is what the test costs under the detector (2 cores).
//
// Not for the RSA vector tests (their private operations go through
// internal/ossl's cgo calls, which checkptr checks) or TestConformance
// (its subtests share key fixtures).
func skipVectorsUnderRace(t *testing.T, took string) {
	t.Helper()
	if testenv.Race {
		t.Skipf("known-answer vectors, one goroutine per key, no unsafe code: %s under the race detector; they run in the CGO-free and cgo passes", took)
	}
}
