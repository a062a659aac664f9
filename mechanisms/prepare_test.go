package mechanisms

import (
	"bytes"
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
			if m.SinglePart {
				n = 32 // suits raw PKCS#1 v1.5, PSS with SHA-256, raw ECDSA
			}
			l, ok := inputLengths[m.Type]
			if ok && len(l) > 0 {
				n = l[len(l)-1]
			}
			// Rows whose core loops are off (inputLengths empty) have
			// their own round trips.
			roundTrip := m.Encrypt != nil && (!ok || len(l) > 0)
			msg := make([]byte, n)
			_, _ = rand.Read(msg)
			if roundTrip {
				// Encryption takes the public key (the secret key itself
				// for symmetric rows).
				for _, pair := range [][2]any{{f.pub, prep}, {prepared(t, m, f.pub), f.priv}} {
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
				verify := func(k any, s []byte) {
					v, err := m.Verify(k, param)
					require.NoError(t, err)
					require.NoError(t, v.Update(msg))
					require.NoError(t, v.Verify(s))
				}
				pub := f.pub // the secret key itself for MACs
				// Deterministic schemes (MACs, PKCS#1 v1.5) give the same
				// bytes either way; randomised ones (PSS, ECDSA) verify
				// either way.
				if plain := sig(f.priv); bytes.Equal(plain, sig(f.priv)) {
					require.Equal(t, plain, sig(prep), "prepared and plain keys sign alike")
					// Again: a prepared state may hand out reused
					// instances, which must start from the key alone.
					require.Equal(t, plain, sig(prep), "a reused prepared instance signs alike")
				}
				verify(pub, sig(prep))
				verify(pub, sig(prep))
				verify(prepared(t, m, pub), sig(f.priv))
			}
			// A state prepared for another key must never be used for it:
			// the row checks it was made for its own algorithm only, so a
			// foreign state falls back to the key (and still works).
			if m.Encrypt != nil {
				_, err := m.Encrypt(&Prepared{Key: f.pub, State: "foreign state"}, param)
				require.NoError(t, err)
			}
			if m.Sign != nil {
				_, err := m.Sign(&Prepared{Key: f.priv, State: "foreign state"}, param)
				require.NoError(t, err)
			}
		}
	})
}
