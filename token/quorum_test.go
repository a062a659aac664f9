package token

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
	"gohsm/token/attrs"
	"gohsm/token/audit"
	"gohsm/token/quorum"
	"gohsm/token/store"
)

// Approver keys are costly to make: a few, shared by the tests.
var (
	approverOnce sync.Once
	approverKeys []*rsa.PrivateKey
)

func approverKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	approverOnce.Do(func() {
		for range 5 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			approverKeys = append(approverKeys, k)
		}
	})
	return approverKeys[i]
}

func pubPEM(k *rsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// quorumEnv is a token with officers admin, admin2, admin3 and crypto
// users user, bob, each with an approver key (index in keys) registered.
type quorumEnv struct {
	t    *testing.T
	m    *Module
	h    ck.ULong
	keys map[string]*rsa.PrivateKey
	pins map[string]string
	dir  string
}

func newQuorumEnv(t *testing.T) *quorumEnv {
	m, dir := newToken(t)
	e := &quorumEnv{t: t, m: m, h: openRW(t, m), dir: dir,
		keys: map[string]*rsa.PrivateKey{"admin": approverKey(t, 0), "admin2": approverKey(t, 1), "admin3": approverKey(t, 2), "user": approverKey(t, 3), "bob": approverKey(t, 4)},
		pins: map[string]string{"admin": soPIN, "admin2": "admin2:officer-pw2", "admin3": "admin3:officer-pw3", "user": userPIN, "bob": "bob:bob-pw-123"}}
	e.login("admin")
	require.NoError(t, m.CreateUser(e.h, "admin2", store.RoleCO, []byte("officer-pw2")))
	require.NoError(t, m.CreateUser(e.h, "admin3", store.RoleCO, []byte("officer-pw3")))
	require.NoError(t, m.CreateUser(e.h, "bob", store.RoleCU, []byte("bob-pw-123")))
	for _, u := range []string{"admin", "admin2", "admin3", "user", "bob"} {
		e.login(u)
		e.register(u)
	}
	return e
}

func (e *quorumEnv) login(name string) {
	e.t.Helper()
	_ = e.m.Logout(e.h)
	ut := ck.CKU_USER
	if name == "admin" || name == "admin2" || name == "admin3" {
		ut = ck.CKU_SO
	}
	require.NoError(e.t, e.m.Login(e.h, ut, []byte(e.pins[name])))
}

func (e *quorumEnv) register(name string) {
	e.t.Helper()
	approval, err := e.m.GenerateQuorumToken(e.h, quorum.Registration)
	require.NoError(e.t, err)
	f := quorum.NewRegistrationFile(approval)
	sig, err := quorum.Sign(e.keys[name], approval)
	require.NoError(e.t, err)
	f.Tokens[0].Signed = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(f)
	require.NoError(e.t, e.m.RegisterQuorumKey(e.h, pubPEM(e.keys[name]), b))
}

// token asks for a token of svc as the logged-in user and returns its
// file signed by approvers.
func (e *quorumEnv) token(svc quorum.Service, approvers ...string) []byte {
	e.t.Helper()
	approval, err := e.m.GenerateQuorumToken(e.h, svc)
	require.NoError(e.t, err)
	return e.sign(approval, approvers...)
}

func (e *quorumEnv) sign(approval []byte, approvers ...string) []byte {
	e.t.Helper()
	f := quorum.NewTokenFile(approval)
	for _, a := range approvers {
		sig, err := quorum.Sign(e.keys[a], approval)
		require.NoError(e.t, err)
		f.Signatures = append(f.Signatures, quorum.Signature{Username: a, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	b, _ := json.Marshal(f)
	return b
}

// setUserQuorum2 sets quorum to 2, then user to 2 with quorum's approval.
func (e *quorumEnv) setUserQuorum2() {
	e.t.Helper()
	e.login("admin")
	w, err := e.m.SetQuorumValue(e.h, quorum.Quorum, 2)
	require.NoError(e.t, err)
	assert.Empty(e.t, w, "three registered officers: one to spare")
	_, err = e.m.SetQuorumValue(e.h, quorum.User, 2)
	assert.ErrorIs(e.t, err, quorum.ErrApprovalRequired, "quorum's value is 2 now")
	require.NoError(e.t, e.m.ApproveQuorumToken(e.h, e.token(quorum.Quorum, "admin", "admin2")))
	_, err = e.m.SetQuorumValue(e.h, quorum.User, 2)
	require.NoError(e.t, err)
}

// TestQuorumUserService: behaviour 27. With the user service at 2, user
// create needs an approved token with two officers' signatures; the token
// is used once; too few approvals are refused.
func TestQuorumUserService(t *testing.T) {
	e := newQuorumEnv(t)
	m, h := e.m, e.h
	vs, err := m.QuorumValues(h)
	require.NoError(t, err)
	assert.Equal(t, map[quorum.Service]int{quorum.User: 1, quorum.Quorum: 1}, vs, "standard: no cluster service")
	e.setUserQuorum2()
	vs, err = m.QuorumValues(h)
	require.NoError(t, err)
	assert.Equal(t, map[quorum.Service]int{quorum.User: 2, quorum.Quorum: 2}, vs)

	err = m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1"))
	assert.ErrorIs(t, err, quorum.ErrApprovalRequired)
	assert.ErrorIs(t, err, ck.CKR_FUNCTION_REJECTED)

	// One approval of two.
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin")))
	assert.ErrorIs(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")), quorum.ErrTooFew)
	// A crypto user's signature does not count for the user service.
	_, err = m.GenerateQuorumToken(h, quorum.User)
	require.Error(t, err, "one live user token per officer")
	n, err := m.DeleteQuorumTokens(h, false)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin", "user")))
	assert.ErrorIs(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")), quorum.ErrTooFew)
	_, err = m.DeleteQuorumTokens(h, true)
	require.NoError(t, err)

	signed := e.token(quorum.User, "admin", "admin3")
	require.NoError(t, m.ApproveQuorumToken(h, signed))
	ts, err := m.QuorumTokens(h)
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, QuorumToken{User: "admin", Service: quorum.User, Required: 2, Approvals: 2, Timeout: 600}, ts[0])
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")))

	// Used up: the next operation needs a new token; the old one is gone.
	assert.ErrorIs(t, m.DeleteUser(h, "carol"), quorum.ErrApprovalRequired)
	assert.ErrorIs(t, m.ApproveQuorumToken(h, signed), quorum.ErrUnknown)
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin2", "admin3")))
	require.NoError(t, m.DeleteUser(h, "carol"))

	// An approver the values need cannot be deleted: with user and
	// quorum at 2, deleting one of three registered admins leaves 2 (fine),
	// the next would leave 1.
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin2", "admin3")))
	require.NoError(t, m.CreateUser(h, "admin4", store.RoleCO, []byte("officer-pw4")))
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin2", "admin3")))
	require.NoError(t, m.DeleteUser(h, "admin4"), "no key registered: not an approver")
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin2", "admin3")))
	require.NoError(t, m.DeleteUser(h, "admin3"))
	err = m.DeleteUser(h, "admin2")
	assert.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED, "nobody could approve")
	assert.Contains(t, err.Error(), "fewer than")

	// C_InitPIN (create a crypto user, or set its password) is no way
	// around the user service.
	err = m.InitPIN(h, []byte("dave:dave-pw-1"))
	assert.ErrorIs(t, err, ck.CKR_FUNCTION_REJECTED)
	assert.ErrorIs(t, err, quorum.ErrApprovalRequired)

	// Changing another's password is gated; one's own is not.
	assert.ErrorIs(t, m.ChangePassword(h, "bob", []byte("bob-pw-456")), quorum.ErrApprovalRequired)
	require.NoError(t, m.ChangePassword(h, "admin", []byte("officer-pw")))
}

// TestQuorumExpiry: ten minutes after it was made a token is refused,
// whether approved before or after.
func TestQuorumExpiry(t *testing.T) {
	e := newQuorumEnv(t)
	e.setUserQuorum2()
	t.Cleanup(func() { quorumNow = time.Now })
	base := time.Now()
	quorumNow = func() time.Time { return base }
	require.NoError(t, e.m.ApproveQuorumToken(e.h, e.token(quorum.User, "admin", "admin2")))
	quorumNow = func() time.Time { return base.Add(quorum.Expiry) }
	assert.ErrorIs(t, e.m.CreateUser(e.h, "carol", store.RoleCU, []byte("carol-pw-1")), quorum.ErrExpired)
	ts, err := e.m.QuorumTokens(e.h)
	require.NoError(t, err)
	assert.Empty(t, ts, "an expired token is not listed")

	// An expired token is purged when another is made.
	later := base.Add(quorum.Expiry)
	quorumNow = func() time.Time { return later }
	signed := e.token(quorum.User, "admin", "admin2")
	quorumNow = func() time.Time { return later.Add(quorum.Expiry - time.Second) }
	require.NoError(t, e.m.ApproveQuorumToken(e.h, signed), "a second before expiry")
	quorumNow = func() time.Time { return later.Add(quorum.Expiry + time.Second) }
	assert.ErrorIs(t, e.m.ApproveQuorumToken(e.h, signed), quorum.ErrExpired)
}

// TestQuorumForgedApprovals: a signature by the wrong key, by a user with
// no registered key, or a token of another user are refused.
func TestQuorumForgedApprovals(t *testing.T) {
	e := newQuorumEnv(t)
	e.setUserQuorum2()
	m, h := e.m, e.h
	approval, err := m.GenerateQuorumToken(h, quorum.User)
	require.NoError(t, err)

	// admin2's name, admin3's key.
	f := quorum.NewTokenFile(approval)
	for _, k := range []struct{ name, key string }{{"admin", "admin"}, {"admin2", "admin3"}} {
		sig, _ := quorum.Sign(e.keys[k.key], approval)
		f.Signatures = append(f.Signatures, quorum.Signature{Username: k.name, Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	b, _ := json.Marshal(f)
	assert.ErrorIs(t, m.ApproveQuorumToken(h, b), quorum.ErrBadSig)

	// carol has no registered key.
	require.NoError(t, m.ApproveQuorumToken(h, e.sign(approval, "admin", "admin2")))
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")))
	e.keys["carol"] = approverKey(t, 4)
	assert.ErrorIs(t, m.ApproveQuorumToken(h, e.sign(approval, "admin", "carol")), quorum.ErrUnknown, "the first token was used")
	assert.ErrorIs(t, m.ApproveQuorumToken(h, e.token(quorum.User, "admin", "carol")), quorum.ErrUnregistered)

	// Another officer cannot approve admin's token for itself.
	_, err = m.DeleteQuorumTokens(h, true)
	require.NoError(t, err)
	signed := e.token(quorum.User, "admin", "admin2")
	e.login("admin2")
	assert.ErrorIs(t, m.ApproveQuorumToken(h, signed), quorum.ErrNotYours)
	// A registration must be signed with the registered key's private key.
	approval, err = m.GenerateQuorumToken(h, quorum.Registration)
	require.NoError(t, err)
	rf := quorum.NewRegistrationFile(approval)
	sig, _ := quorum.Sign(e.keys["admin"], approval)
	rf.Tokens[0].Signed = base64.StdEncoding.EncodeToString(sig)
	b, _ = json.Marshal(rf)
	assert.ErrorIs(t, m.RegisterQuorumKey(h, pubPEM(e.keys["admin2"]), b), quorum.ErrBadSig)
}

// TestQuorumValueRules: values 1 or 2..8, user <= quorum, never above the
// registered officers (lockout), a warning without a spare approver.
func TestQuorumValueRules(t *testing.T) {
	e := newQuorumEnv(t)
	m, h := e.m, e.h
	e.login("admin")
	_, err := m.SetQuorumValue(h, quorum.User, 2)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "user above quorum")
	_, err = m.SetQuorumValue(h, quorum.Quorum, 9)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD)
	_, err = m.SetQuorumValue(h, quorum.Quorum, 4)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "three officers registered: nobody could approve")
	w, err := m.SetQuorumValue(h, quorum.Quorum, 3)
	require.NoError(t, err)
	assert.Contains(t, w, "M+1")
	_, err = m.SetQuorumValue(h, quorum.Cluster, 2)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "standard: no cluster service")
	_, err = m.SetQuorumValue(h, quorum.KeyUsage, 2)
	assert.ErrorIs(t, err, ck.CKR_ARGUMENTS_BAD, "key services' values are the keys'")
	e.login("user")
	_, err = m.SetQuorumValue(h, quorum.Quorum, 1)
	assert.Error(t, err, "crypto users do not set values")
	_, err = m.GenerateQuorumToken(h, quorum.User)
	assert.ErrorIs(t, err, ck.CKR_USER_TYPE_INVALID)
}

// TestKeyQuorumGates: a key's use value gates signing (C_SignInit, every
// time: the fast key cache does not keep the key), its manage value
// wrap, unwrap, share, unshare and attribute changes; approvers count
// among the key's owner and sharees.
func TestKeyQuorumGates(t *testing.T) {
	e := newQuorumEnv(t)
	m, h := e.m, e.h
	e.login("user")
	_, priv := ecKeyPair(t, m, h, "signer")
	tmpl := aesTemplate("wrapper", true)
	tmpl[ck.CKA_EXTRACTABLE] = attrs.Bool(true)
	tmpl[ck.CKA_WRAP] = attrs.Bool(true)
	tmpl[ck.CKA_UNWRAP] = attrs.Bool(true)
	aes, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	plain, err := m.GenerateKey(h, Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)
	require.NoError(t, m.Share(h, priv, "bob", true))
	require.NoError(t, m.Share(h, aes, "bob", true))

	assert.ErrorIs(t, m.SetKeyQuorumValues(h, priv, 3, 0), ck.CKR_ARGUMENTS_BAD, "two users")
	require.NoError(t, m.SetKeyQuorumValues(h, priv, 2, 0))
	require.NoError(t, m.SetKeyQuorumValues(h, aes, 0, 2))
	pubKey, _ := ecKeyPair(t, m, h, "other")
	assert.ErrorIs(t, m.SetKeyQuorumValues(h, pubKey, 2, 0), ck.CKR_ACTION_PROHIBITED, "public keys have none")
	assert.ErrorIs(t, m.SetKeyQuorumValues(h, aes, 0, 1), ck.CKR_ACTION_PROHIBITED, "set once")
	// Unsharing bob would leave one user for a value of 2.
	err = m.Share(h, aes, "bob", false)
	assert.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	assert.Contains(t, err.Error(), "fewer than its quorum value")
	// Nor may bob be deleted, which would take his share with him.
	e.login("admin")
	err = m.DeleteUser(h, "bob")
	assert.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED)
	assert.Contains(t, err.Error(), "fewer than its quorum value")
	e.login("user")
	u, mg, err := m.KeyQuorumValues(h, priv)
	require.NoError(t, err)
	assert.Equal(t, [2]int{2, 0}, [2]int{u, mg})

	// A copy would carry no values: refused.
	_, err = m.CopyObject(h, priv, attrs.Template{ck.CKA_LABEL: []byte("copy")})
	assert.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED, "a copy would escape the use value")
	_, err = m.CopyObject(h, aes, nil)
	assert.ErrorIs(t, err, ck.CKR_ACTION_PROHIBITED, "a copy would escape the manage value")

	// Use.
	ecdsa := Mechanism{Type: ck.CKM_ECDSA}
	err = m.SignInit(h, ecdsa, priv)
	assert.ErrorIs(t, err, quorum.ErrQuorumFailed)
	assert.ErrorIs(t, err, ck.CKR_FUNCTION_REJECTED)
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyUsage, "user", "admin")))
	assert.ErrorIs(t, m.SignInit(h, ecdsa, priv), quorum.ErrTooFew, "an officer is not the key's user")
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyUsage, "user", "bob")))
	require.NoError(t, m.SignInit(h, ecdsa, priv))
	_, err = m.Sign(h, make([]byte, 32), Out{Buf: make([]byte, 128)})
	require.NoError(t, err)
	assert.ErrorIs(t, m.SignInit(h, ecdsa, priv), ck.CKR_FUNCTION_REJECTED, "one token, one signature")
	// Refused again once nothing in the store changed: the session's
	// fast key cache does not let the key through.
	assert.ErrorIs(t, m.SignInit(h, ecdsa, priv), ck.CKR_FUNCTION_REJECTED, "not from the fast key cache")
	require.NoError(t, m.SetKeyQuorumValues(h, plain, 0, 0))

	// Manage: share, unshare, set attribute, wrap (as wrapping key and as
	// payload), unwrap.
	e.login("admin")
	require.NoError(t, m.CreateUser(h, "carol", store.RoleCU, []byte("carol-pw-1")))
	e.login("user")
	manage := []struct {
		name string
		call func() error
	}{
		{"share", func() error { return m.Share(h, aes, "carol", true) }},
		{"unshare", func() error { return m.Share(h, aes, "carol", false) }},
		{"set attribute", func() error {
			_, err := m.SetKeyAttributes(h, aes, attrs.Template{ck.CKA_LABEL: []byte("x")})
			return err
		}},
		{"wrap with it", func() error {
			_, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, aes, plain, Out{Buf: make([]byte, 64)})
			return err
		}},
		{"wrap it", func() error {
			_, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, plain, aes, Out{Buf: make([]byte, 64)})
			return err
		}},
	}
	for _, c := range manage {
		assert.ErrorIs(t, c.call(), quorum.ErrQuorumFailed, c.name)
		require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyManagement, "user", "bob")), c.name)
		require.NoError(t, c.call(), c.name)
	}
	wrapped := make([]byte, 64)
	_, err = m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, plain, plain, Out{Buf: make([]byte, 64)})
	require.NoError(t, err, "keys without values need no token")
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyManagement, "user", "bob")))
	n, err := m.WrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, aes, plain, Out{Buf: wrapped})
	require.NoError(t, err)
	unwrap := func() error {
		_, err := m.UnwrapKey(h, Mechanism{Type: ck.CKM_AES_KEY_WRAP_PAD}, aes, wrapped[:n], attrs.Template{
			ck.CKA_CLASS: attrs.ULong(ck.ULong(ck.CKO_SECRET_KEY)), ck.CKA_KEY_TYPE: attrs.ULong(ck.ULong(ck.CKK_AES))})
		return err
	}
	assert.ErrorIs(t, unwrap(), quorum.ErrQuorumFailed)
	require.NoError(t, m.ApproveQuorumToken(h, e.token(quorum.KeyManagement, "bob", "user")))
	require.NoError(t, unwrap())
}

// TestQuorumAuditEvents: each quorum action leaves its record, with the
// user who acted, in the transaction of its change; a refused one leaves
// none.
func TestQuorumAuditEvents(t *testing.T) {
	skipOnPostgres(t, "it reads the SQLite token file")
	e := newQuorumEnv(t)
	e.setUserQuorum2() // one refused set (no approval) on the way
	_, err := e.m.DeleteQuorumTokens(e.h, true)
	require.NoError(t, err)
	_, err = e.m.SetQuorumValue(e.h, quorum.User, 1)
	require.Error(t, err, "refused: no approval")
	approval, err := e.m.GenerateQuorumToken(e.h, quorum.User)
	require.NoError(t, err)
	f := quorum.NewTokenFile(approval)
	f.Signatures = []quorum.Signature{{Username: "admin2", Signature: base64.StdEncoding.EncodeToString(make([]byte, 256))}}
	forged, _ := json.Marshal(f)
	require.ErrorIs(t, e.m.ApproveQuorumToken(e.h, forged), quorum.ErrBadSig)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "slot-3", store.DBName)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT record FROM audit ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	type key struct {
		op audit.Opcode
		ok bool
	}
	count := map[key]int{}
	var registered, setOK, setRefused, refusals []string
	for rows.Next() {
		var b []byte
		require.NoError(t, rows.Scan(&b))
		var ev audit.Event
		require.NoError(t, json.Unmarshal(b, &ev))
		ok := ev.Code == audit.RespSuccess
		count[key{ev.Opcode, ok}]++
		switch {
		case ev.Opcode == audit.CN_REGISTER_QUORUM_PUBKEY && ok:
			registered = append(registered, ev.Actor)
		case ev.Opcode == audit.CN_SET_M_VALUE && ok:
			setOK = append(setOK, ev.Detail)
		case ev.Opcode == audit.CN_SET_M_VALUE:
			setRefused = append(setRefused, ev.Detail)
		case ev.Opcode == audit.CN_APPROVE_TOKEN && !ok:
			refusals = append(refusals, ev.Detail)
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 7, count[key{audit.CN_GET_TOKEN, true}], "5 registration tokens, the quorum token, the user token")
	assert.Equal(t, []string{"admin", "admin2", "admin3", "user", "bob"}, registered)
	assert.Equal(t, 1, count[key{audit.CN_APPROVE_TOKEN, true}])
	assert.Equal(t, []string{"service quorum value 2", "service user value 2"}, setOK)
	require.Len(t, setRefused, 2, "the two refused changes, as refusals")
	assert.Contains(t, setRefused[1], "service user value 1")
	assert.Contains(t, setRefused[1], "Quorum approval is required")
	require.Len(t, refusals, 3, "two operations without approval, one forged approval")
	assert.Contains(t, refusals[2], "signature is invalid")
	assert.Equal(t, 1, count[key{audit.CN_DELETE_TOKEN, true}])
}
