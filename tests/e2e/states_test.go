package e2e

import (
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/require"
)

// TestSessionStatesThroughTheABI drives a session of the built library into
// each of the five Cryptoki session states and makes each kind of call that
// the state rules govern. The expected answers are written here, from the
// spec and not from the library's permission table (token/profile.go):
//
//   - PKCS#11 v3.0 5.5 "Session states" / 4.4: a R/O session reads token
//     objects and cannot create, modify or destroy them
//     (CKR_SESSION_READ_ONLY); a public session sees and makes public
//     objects only (private ones: CKR_USER_NOT_LOGGED_IN), session objects
//     keys included; an object the session cannot see does not exist
//     (CKR_OBJECT_HANDLE_INVALID).
//   - C_InitPIN only in the R/W SO Functions state, else
//     CKR_USER_NOT_LOGGED_IN; C_SetPIN only in R/W states, else
//     CKR_SESSION_READ_ONLY (5.6).
//   - gohsm's crypto officer is CloudHSM's: it manages users and creates,
//     changes or uses no object (CKR_USER_NOT_LOGGED_IN), where the spec
//     would let a SO session handle public objects.
//
// A private token key in a R/O public session breaks two rules at once;
// the spec does not order them, so both codes are accepted there.
func TestSessionStatesThroughTheABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p

	// Alice's key pair: the public half is a public object, the private
	// half hers.
	s := tk.userSession(userPIN)
	alicePub, alicePriv := tk.genEC(s, oidP256, "state-key", true)
	require.NoError(t, p.Logout(s))
	require.NoError(t, p.CloseSession(s))

	// Objects a call may change or destroy, made afresh for each call while
	// no one is logged in (a login is slot-wide).
	type fixtures struct {
		nobodys pkcs11.ObjectHandle // public token object made in a R/W public session
		alices  pkcs11.ObjectHandle // alice's private token key
	}
	labelOf := func(s pkcs11.SessionHandle, o pkcs11.ObjectHandle) (string, error) {
		a, err := p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil {
			return "", err
		}
		return string(a[0].Value), nil
	}
	makeFixtures := func(t *testing.T) fixtures {
		s := tk.session()
		defer p.CloseSession(s)
		var fx fixtures
		var err error
		fx.nobodys, err = p.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "nobody's"),
		})
		require.NoError(t, err, "fixture: a public token object from a R/W public session")
		require.NoError(t, p.Login(s, pkcs11.CKU_USER, userPIN))
		fx.alices = tk.genAES(s, "alice's", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true))
		require.NoError(t, p.Logout(s))
		return fx
	}
	aes := func(token, private bool) func(s pkcs11.SessionHandle, _ fixtures) error {
		return func(s pkcs11.SessionHandle, _ fixtures) error {
			_, err := p.GenerateKey(s, mech(pkcs11.CKM_AES_KEY_GEN, nil), []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, private),
			})
			return err
		}
	}
	data := func(token bool) func(s pkcs11.SessionHandle, _ fixtures) error {
		return func(s pkcs11.SessionHandle, _ fixtures) error {
			_, err := p.CreateObject(s, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			})
			return err
		}
	}
	// relabel changes an object's label and checks, where the session sees
	// the object, that it changed exactly when the call succeeded.
	relabel := func(pick func(fixtures) pkcs11.ObjectHandle) func(s pkcs11.SessionHandle, fx fixtures) error {
		return func(s pkcs11.SessionHandle, fx fixtures) error {
			o := pick(fx)
			before, _ := labelOf(s, o)
			err := p.SetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "changed")})
			if after, lerr := labelOf(s, o); lerr == nil {
				if changed := after != before; changed != (err == nil) {
					return fmt.Errorf("C_SetAttributeValue returned %v and the label went from %q to %q", err, before, after)
				}
			}
			return err
		}
	}
	destroy := func(pick func(fixtures) pkcs11.ObjectHandle) func(s pkcs11.SessionHandle, fx fixtures) error {
		return func(s pkcs11.SessionHandle, fx fixtures) error {
			o := pick(fx)
			_, seen := labelOf(s, o)
			err := p.DestroyObject(s, o)
			if _, lerr := labelOf(s, o); seen == nil && (lerr == nil) != (err != nil) {
				return fmt.Errorf("C_DestroyObject returned %v and the object is still there: %v", err, lerr == nil)
			}
			return err
		}
	}
	nobodys := func(fx fixtures) pkcs11.ObjectHandle { return fx.nobodys }
	alices := func(fx fixtures) pkcs11.ObjectHandle { return fx.alices }

	const (
		ok  = pkcs11.CKR_OK
		nli = pkcs11.CKR_USER_NOT_LOGGED_IN
		ro  = pkcs11.CKR_SESSION_READ_ONLY
		inv = pkcs11.CKR_OBJECT_HANDLE_INVALID
		kin = pkcs11.CKR_KEY_HANDLE_INVALID
	)
	// want is one call's expected answer per state, in the order
	// R/O public, R/W public, R/O user, R/W user, R/W SO.
	type want [5][]uint
	one := func(a, b, c, d, e uint) want { return want{{a}, {b}, {c}, {d}, {e}} }
	calls := []struct {
		name string
		call func(s pkcs11.SessionHandle, fx fixtures) error
		want want
	}{
		{"sign with alice's private key", func(s pkcs11.SessionHandle, _ fixtures) error {
			if err := p.SignInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), alicePriv); err != nil {
				return err
			}
			_, err := p.Sign(s, []byte("state"))
			return err
		}, one(kin, kin, ok, ok, nli)},
		{"verify with alice's public key", func(s pkcs11.SessionHandle, _ fixtures) error {
			if err := p.VerifyInit(s, mech(pkcs11.CKM_ECDSA_SHA256, nil), alicePub); err != nil {
				return err
			}
			err := p.Verify(s, []byte("state"), make([]byte, 64))
			if isRV(err, pkcs11.CKR_SIGNATURE_INVALID) {
				return nil // the key was usable
			}
			return err
		}, one(ok, ok, ok, ok, nli)},
		{"generate a public session key", aes(false, false), one(ok, ok, ok, ok, nli)},
		{"generate a private session key", aes(false, true), one(nli, nli, ok, ok, nli)},
		{"generate a private token key", aes(true, true), want{{ro, nli}, {nli}, {ro}, {ok}, {nli}}},
		{"create a public session object", data(false), one(ok, ok, ok, ok, nli)},
		{"create a public token object", data(true), one(ro, ok, ro, ok, nli)},
		{"modify a public token object of nobody's", relabel(nobodys), one(ro, ok, ro, ok, nli)},
		{"destroy a public token object of nobody's", destroy(nobodys), one(ro, ok, ro, ok, nli)},
		{"modify alice's private token key", relabel(alices), one(inv, inv, ro, ok, inv)},
		{"destroy alice's private token key", destroy(alices), one(inv, inv, ro, ok, inv)},
		{"C_InitPIN", func(s pkcs11.SessionHandle, _ fixtures) error { return p.InitPIN(s, "carol:carolpassword") },
			one(nli, nli, nli, nli, ok)},
	}
	states := []struct {
		state uint
		rw    bool
		user  uint
		pin   string
	}{
		{pkcs11.CKS_RO_PUBLIC_SESSION, false, 0, ""},
		{pkcs11.CKS_RW_PUBLIC_SESSION, true, 0, ""},
		{pkcs11.CKS_RO_USER_FUNCTIONS, false, pkcs11.CKU_USER, userPIN},
		{pkcs11.CKS_RW_USER_FUNCTIONS, true, pkcs11.CKU_USER, userPIN},
		{pkcs11.CKS_RW_SO_FUNCTIONS, true, pkcs11.CKU_SO, soPIN},
	}
	stateName := []string{"RO_PUBLIC", "RW_PUBLIC", "RO_USER", "RW_USER", "RW_SO"}
	// C_SetPIN: the PIN of whoever the state names, set to itself.
	setPIN := []struct{ old string }{{userPIN}, {userPIN}, {userPIN}, {userPIN}, {soPIN}}
	for i, st := range states {
		open := func(t *testing.T) pkcs11.SessionHandle {
			flags := uint(pkcs11.CKF_SERIAL_SESSION)
			if st.rw {
				flags |= pkcs11.CKF_RW_SESSION
			}
			s, err := p.OpenSession(tk.slot, flags)
			require.NoError(t, err)
			if st.pin != "" {
				require.NoError(t, p.Login(s, st.user, st.pin))
			}
			require.Equal(t, st.state, tk.state(s))
			return s
		}
		for _, c := range calls {
			t.Run(stateName[i]+"/"+c.name, func(t *testing.T) {
				fx := makeFixtures(t)
				s := open(t)
				defer p.CloseSession(s)
				err := c.call(s, fx)
				if w := c.want[i]; len(w) == 1 && w[0] == ok {
					require.NoError(t, err)
				} else {
					requireRV(t, err, w...)
				}
			})
		}
		t.Run(stateName[i]+"/C_SetPIN", func(t *testing.T) {
			s := open(t)
			defer p.CloseSession(s)
			err := p.SetPIN(s, setPIN[i].old, setPIN[i].old)
			if st.rw {
				require.NoError(t, err)
			} else {
				requireRV(t, err, ro)
			}
		})
	}
}

// TestPublicSessionObjectsThroughTheABI: without a login a R/O session makes
// and uses a public session key, a R/W session a public token object that
// another process, logged in as a crypto user, sees with the same handle.
func TestPublicSessionObjectsThroughTheABI(t *testing.T) {
	tk := newToken(t)
	tk.initToken()
	p := tk.p
	ro, err := p.OpenSession(tk.slot, pkcs11.CKF_SERIAL_SESSION)
	require.NoError(t, err)
	k := tk.genAES(ro, "public-key", pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false))
	require.NoError(t, p.EncryptInit(ro, mech(pkcs11.CKM_AES_ECB, nil), k))
	ct, err := p.Encrypt(ro, make([]byte, 16))
	require.NoError(t, err)
	require.Len(t, ct, 16)

	rw := tk.session()
	h, err := p.CreateObject(rw, dataObject("public-token-object")) // CKA_PRIVATE false: a data object's default
	require.NoError(t, err, "a R/W public session creates a public token object")
	require.Equal(t, []string{fmt.Sprintf("%d public-token-object", h)}, tk.run("list", userPIN),
		"another process, logged in, sees the object of nobody's under the same handle")
	require.NoError(t, p.CloseSession(rw))
	require.NoError(t, p.CloseSession(ro))
}
