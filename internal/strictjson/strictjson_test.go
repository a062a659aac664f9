package strictjson

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type inner struct {
	HSM   *int   `json:"hsm"`
	State string `json:"state"`
}

type outer struct {
	Name  string           `json:"name"`
	Steps []inner          `json:"steps"`
	ByKey map[string]inner `json:"by_key"`
	Plain int
	skip  int
}

func TestDecode(t *testing.T) {
	var v outer
	require.NoError(t, Decode([]byte(`{"name":"a","steps":[{"hsm":1,"state":"down"}],"by_key":{"k":{"state":"up"}},"Plain":3}`), &v))
	assert.Equal(t, "a", v.Name)
	assert.Equal(t, 1, *v.Steps[0].HSM)
	assert.Equal(t, "up", v.ByKey["k"].State)
	assert.Equal(t, 3, v.Plain)
	require.NoError(t, Decode([]byte(`null`), &v))

	for _, c := range []struct{ in, name, path string }{
		{`{"NAME":"a"}`, "NAME", ""},
		{`{"steps":[{"hsm":0},{"HSM":1}]}`, "HSM", "steps[1]"},
		{`{"by_key":{"k":{"State":"up"}}}`, "State", "by_key.k"},
		{`{"plain":3}`, "plain", ""},
	} {
		var v outer
		err := Decode([]byte(c.in), &v)
		var ne *NameError
		require.True(t, errors.As(err, &ne), "%s: %v", c.in, err)
		assert.Equal(t, c.name, ne.Name, c.in)
		assert.Equal(t, c.path, ne.Path, c.in)
		assert.Contains(t, err.Error(), "names are matched exactly")
	}
	assert.ErrorIs(t, Decode([]byte(`{"name":"a"} {}`), &v), ErrTrailing)
	assert.ErrorContains(t, Decode([]byte(`{"nope":1}`), &v), `unknown field "nope"`)
	assert.ErrorContains(t, Decode([]byte(`{"name":`), &v), "unexpected EOF")
	assert.ErrorContains(t, Decode([]byte(`{"name":1}`), &v), "cannot unmarshal number")
}
