// Package layering checks gohsm's import direction:
// pkcs11 -> token -> mechanisms -> internal/ck, never back, and that only
// pkcs11, internal/ossl (libcrypto, loaded at run time, with a cgo-free
// stand-in) and test drivers use cgo.
package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type pkg struct {
	ImportPath string
	Imports    []string
	CgoFiles   []string
}

// rank orders the layers: a package may import only packages of a lower
// rank (or its own subpackages' rank, e.g. token -> token/attrs).
func rank(path string) int {
	switch {
	case path == "gohsm/internal/ck" || strings.HasPrefix(path, "gohsm/internal/ck/"), path == "gohsm/internal/wycheproof",
		path == "gohsm/internal/ossl",
		path == "gohsm/internal/mapfile",    // shared-mapping files grown with storage behind them
		path == "gohsm/internal/strictjson": // JSON with exact member names (plans, console bodies)
		return 0
	case path == "gohsm/mechanisms":
		return 1
	case path == "gohsm/token/store", path == "gohsm/token/attrs",
		path == "gohsm/token/store/postgres", // the PostgreSQL backend, beside the store
		path == "gohsm/token/logincache":     // the login cache in the kernel keyring
		return 2
	case path == "gohsm/token/profile", // a profile's attribute policy is an attrs.Policy
		path == "gohsm/token/audit", path == "gohsm/token/quorum", // over the store's records
		path == "gohsm/token/cluster",         // the emulated cluster's shared state
		path == "gohsm/token/metrics",         // operation counters, by the cluster's classes
		path == "gohsm/token/store/storetest": // the conformance suite over store.Store
		return 3
	case path == "gohsm/token":
		return 4
	case path == "gohsm/pkcs11":
		return 5
	}
	return -1 // commands and tests sit above everything
}

// sameRank are the imports allowed between packages of one rank: the
// PostgreSQL backend implements the store's interface with its types
// (decided for issue 17: postgres imports store, never the reverse).
var sameRank = map[[2]string]bool{
	{"gohsm/token/store/postgres", "gohsm/token/store"}: true,
	// Metrics count by the cluster's operation classes (issue 18, D5).
	{"gohsm/token/metrics", "gohsm/token/cluster"}: true,
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "gohsm/...").Output()
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		seen++
		r := rank(p.ImportPath)
		if r < 0 {
			continue // commands and test drivers (which may use cgo) sit above the layers
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, "gohsm/") {
				continue
			}
			ir := rank(imp)
			if (ir < 0 || ir >= r) && !(ir == r && sameRank[[2]string{p.ImportPath, imp}]) {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must go pkcs11 -> token -> mechanisms -> internal/ck", p.ImportPath, r, imp, ir)
			}
		}
		if len(p.CgoFiles) > 0 && p.ImportPath != "gohsm/pkcs11" && p.ImportPath != "gohsm/internal/ossl" {
			t.Errorf("%s uses cgo; of the layers only gohsm/pkcs11 and gohsm/internal/ossl may", p.ImportPath)
		}
	}
	require.Greater(t, seen, 5, "go list found too few packages")
}

// TestRanksCoverLayers makes sure a new package under a layer directory is
// placed deliberately rather than silently exempt.
func TestRanksCoverLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "gohsm/...").Output()
	require.NoError(t, err)
	for _, p := range strings.Fields(string(out)) {
		for _, layer := range []string{"gohsm/mechanisms", "gohsm/token", "gohsm/pkcs11", "gohsm/internal/ck", "gohsm/internal/ossl"} {
			if strings.HasPrefix(p, layer) && rank(p) < 0 {
				t.Errorf("package %s has no layer rank: add it to rank()", p)
			}
		}
	}
}
