package attrs

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// TestSchemasLazy: the package's initialisation builds no schema's table
// (a process that makes or reads no object does not pay for them), and
// concurrent first uses of a schema all see one table.
func TestSchemasLazy(t *testing.T) {
	require.False(t, schemasAtInit, "the schema map was made during package initialisation")
	require.Empty(t, builtAtInit, "schemas built during package initialisation")
	// Concurrent first lookups (run it with -race) see one map: an HMAC
	// key type's schema (added with the map) and its conversion.
	var lw sync.WaitGroup
	found := make([]*Schema, 8)
	for i := range found {
		lw.Go(func() {
			found[i], _ = Lookup(ck.CKO_SECRET_KEY, ck.CKK_SHA256_HMAC)
			_, err := KeyFromTemplate(ck.CKO_SECRET_KEY, ck.CKK_SHA256_HMAC, Template{ck.CKA_VALUE: []byte{1, 2, 3}})
			require.NoError(t, err)
		})
	}
	lw.Wait()
	for _, f := range found {
		require.NotNil(t, f)
		require.Same(t, found[0], f)
	}
	s := compose(ck.CKO_DATA, NoKeyType, objectTable, storageTable, dataTable)
	var wg sync.WaitGroup
	got := make([]Attr, 8)
	for i := range got {
		wg.Go(func() { got[i], _ = s.Attr(ck.CKA_LABEL) })
	}
	wg.Wait()
	for _, a := range got {
		require.Equal(t, ck.CKA_LABEL, a.Type)
	}
	require.Equal(t, len(s.table()), len(s.Attrs()))
	_, ok := s.Attr(ck.CKA_MODULUS)
	require.False(t, ok, "a data object has no CKA_MODULUS")
}
