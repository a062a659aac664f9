package admin

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGenerateMLDSA: key generate ml-dsa makes a pair of the asked
// parameter set (ML-DSA-65 by default); key list shows type ml-dsa and the
// set, which JSON gives as parameter_set only for ML-DSA keys (other keys'
// JSON is unchanged); --key-type ml-dsa filters; a bad set is refused
// before the token is touched.
func TestGenerateMLDSA(t *testing.T) {
	k := newTok(t, "")
	m, h := k.login(alicePIN)
	for _, c := range []struct {
		set  int
		name string
	}{{44, "ML-DSA-44"}, {0, "ML-DSA-65"}, {87, "ML-DSA-87"}} {
		keys, err := Generate(m, h, GenSpec{Type: "ml-dsa", Label: c.name, ParameterSet: c.set})
		require.NoError(t, err)
		require.Len(t, keys, 2)
		for i, class := range []string{"public-key", "private-key"} {
			assert.Equal(t, class, keys[i].Class)
			assert.Equal(t, "ml-dsa", keys[i].KeyType)
			assert.Equal(t, c.name, keys[i].ParameterSet)
			assert.Equal(t, c.name, keys[i].Label)
		}
	}
	aes, err := Generate(m, h, GenSpec{Type: "aes", Label: "a"})
	require.NoError(t, err)
	b, err := json.Marshal(aes[0])
	require.NoError(t, err)
	assert.NotContains(t, string(b), "parameter_set")

	keys, err := ListKeys(m, h, Filter{KeyType: "ml-dsa", Class: "private"})
	require.NoError(t, err)
	require.Len(t, keys, 3)
	b, err = json.Marshal(keys[0])
	require.NoError(t, err)
	assert.Contains(t, string(b), `"parameter_set":"ML-DSA-44"`)

	for _, set := range []int{1, 2, 66, 128} {
		err := GenSpec{Type: "ml-dsa", Label: "x", ParameterSet: set}.Check()
		var ie *InputError
		require.ErrorAs(t, err, &ie, "set %d", set)
		assert.Equal(t, "parameter-set", ie.Field)
	}
}
