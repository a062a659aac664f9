package attrs

// This file's name sorts before every other test file's: cmd/go hands the
// compiler the package's files first and its test files after, each in
// name order, and init funcs run in that order. So the init below runs
// after the package's own initialisation and before any test file's init,
// and records what the library's own initialisation left:
// TestSchemasLazy reads it.
var (
	schemasAtInit bool        // the schema map was made
	builtAtInit   []schemaKey // schemas whose table was built
)

func init() {
	if schemasAtInit = schemasMade.Load(); !schemasAtInit {
		return
	}
	for k, s := range schemas() {
		if s.attrs.Load() != nil {
			builtAtInit = append(builtAtInit, k)
		}
	}
}
