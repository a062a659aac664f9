package mechanisms

// This file's name sorts before every other test file's: cmd/go hands the
// compiler the package's files first and its test files after, each in
// name order, and init funcs run in that order. So the init below runs
// after the package's own initialisation and before any test file's init
// (some of which call Lookup), and records what the library's own
// initialisation left: TestTablesLazy, TestZetasLazy and TestDERTablesLazy
// read it.
var builtAtInit, zetasAtInit, curveDERAtInit, digestInfoAtInit bool

func init() {
	builtAtInit = builtTables.Load() != nil
	zetasAtInit = mlZetasTab != nil
	curveDERAtInit = curveDERBuilt.Load()
	digestInfoAtInit = digestInfoBuilt.Load()
}
