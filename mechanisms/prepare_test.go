package mechanisms

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// Rows with Prepare must behave the same given the prepared key as given
// the key itself: what one encrypts the other decrypts, and MACs agree.
func init() {
	extraConformance = append(extraConformance, func(t *testing.T, m *Mechanism) {
		if m.Prepare == nil {
			return
		}
		for _, kt := range m.KeyTypes {
			f := keyFixtures(t, kt)[0]
			state, err := m.Prepare(f.priv)
			require.NoError(t, err)
			prep := &Prepared{Key: f.priv, State: state}
			param, _ := testParamFor(t, m, &f)
			n := 64
			if l, ok := inputLengths[m.Type]; ok {
				n = l[len(l)-1]
			}
			msg := make([]byte, n)
			_, _ = rand.Read(msg)
			if m.Encrypt != nil {
				for _, pair := range [][2]any{{f.priv, prep}, {prep, f.priv}} {
					e, err := m.Encrypt(pair[0], param)
					require.NoError(t, err)
					ct, err := e.Once(nil, msg)
					require.NoError(t, err)
					d, err := m.Decrypt(pair[1], param)
					require.NoError(t, err)
					pt, err := d.Once(nil, ct)
					require.NoError(t, err)
					require.Equal(t, msg, pt, "prepared and plain keys agree")
				}
			}
			if m.Sign != nil {
				sig := func(k any) []byte {
					s, err := m.Sign(k, param)
					require.NoError(t, err)
					require.NoError(t, s.Update(msg))
					out, err := s.Sign(nil)
					require.NoError(t, err)
					return out
				}
				require.Equal(t, sig(f.priv), sig(prep), "prepared and plain keys MAC alike")
				// Again: a prepared state may hand out reused instances,
				// which must start from the key alone.
				require.Equal(t, sig(f.priv), sig(prep), "a reused prepared instance MACs alike")
				v, err := m.Verify(prep, param)
				require.NoError(t, err)
				require.NoError(t, v.Update(msg))
				require.NoError(t, v.Verify(sig(f.priv)))
			}
			// A state prepared for another key must never be used for it:
			// the row checks it was made for its own algorithm only, so a
			// foreign state falls back to the key (and still works).
			other := &Prepared{Key: f.priv, State: "foreign state"}
			if m.Encrypt != nil {
				_, err := m.Encrypt(other, param)
				require.NoError(t, err)
			}
		}
	})
}
