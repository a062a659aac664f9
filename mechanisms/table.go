package mechanisms

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"gohsm/internal/ck"
)

var (
	rsaKey = []ck.KeyType{ck.CKK_RSA}
	ecKey  = []ck.KeyType{ck.CKK_EC}
	aesKey = []ck.KeyType{ck.CKK_AES}
)

// Key size limits, in the units CK_MECHANISM_INFO uses for each key type
// (PKCS#11 v3.0 Current Mechanisms states the unit per mechanism: bits for
// RSA and EC, bytes for AES).
const (
	// rsaMinBits is the standard profile's floor: Go's own minimum. AWS
	// CloudHSM allows only 2048..4096 in 256-bit steps; a profile knob will
	// narrow this later.
	rsaMinBits  = 1024
	rsaMaxBits  = 4096
	aesMinBytes = 16
	aesMaxBytes = 32
)

// rows is every mechanism gohsm implements, one row per CKM_* value,
// gathered from the family files (rsaRows in rsa.go, ecRows in ecdsa.go,
// aesRows in aes.go, digestRows in hash.go, ...). The CKF_* flags reported
// by C_GetMechanismInfo are derived from which constructors a row sets
// (Flags); key sizes and the absence of a parameter are checked once for
// every row (guard), so constructors only check what is particular to them.
func rows() []Mechanism {
	return slices.Concat(rsaRows(), ecRows(), aesRows(), des3Rows(), digestRows(), kdfRows(), cloudhsmRows(),
		mlkemRows(), mldsaRows(), hashMLDSARows())
}

// tables are the guarded rows by type, sorted, and by page (Lookup). They
// are built on first use, not at package init: a process that loads the
// library and never starts an operation (pkcs11-tool -L) does not pay for
// 123 guarded rows (376 allocations, 78 KB; docs/bench.md, "Start-up").
type tables struct {
	byType map[ck.MechanismType]*Mechanism
	sorted []*Mechanism
	// byPage holds the rows whose type is below 1<<16 (every one the spec
	// defines) by the type's high byte, then its low byte: Lookup runs in
	// every C_*Init, twice (the C boundary reads the parameter's shape from
	// the row, the token the operation), and two loads cost a fraction of a
	// map's hash and probe. Other types (vendor-defined) are looked up in
	// byType.
	byPage *[256]*[256]*Mechanism
}

var (
	builtTables atomic.Pointer[tables]
	buildOnce   sync.Once
)

// loaded returns the tables, building them on the first call. After that
// it is one atomic load (a plain load on amd64 and arm64) and a branch.
func loaded() *tables {
	if t := builtTables.Load(); t != nil {
		return t
	}
	return buildTables()
}

// buildTables is loaded's first call, apart so that loaded stays small
// enough to be inlined into Lookup.
func buildTables() *tables {
	buildOnce.Do(func() {
		byType, sorted := build(rows())
		builtTables.Store(&tables{byType: byType, sorted: sorted, byPage: pages(sorted)})
	})
	return builtTables.Load()
}

func build(rows []Mechanism) (map[ck.MechanismType]*Mechanism, []*Mechanism) {
	m := make(map[ck.MechanismType]*Mechanism, len(rows))
	all := make([]*Mechanism, 0, len(rows))
	for _, r := range rows {
		g := guard(r)
		m[g.Type] = g
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *Mechanism) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return m, all
}

func pages(rows []*Mechanism) *[256]*[256]*Mechanism {
	var p [256]*[256]*Mechanism
	for _, r := range rows {
		if r.Type >= 1<<16 {
			continue
		}
		hi := r.Type >> 8
		if p[hi] == nil {
			p[hi] = new([256]*Mechanism)
		}
		p[hi][r.Type&0xff] = r
	}
	return &p
}

// Lookup returns the row for a mechanism type. Once the tables are built
// it costs, besides the two array loads, an atomic load (a plain load on
// amd64 and arm64) and a call: the load puts it over the inliner's budget,
// so callers no longer inline it (about 1 ns a call; Lookup runs twice per
// C_*Init; docs/bench.md, "Start-up").
func Lookup(t ck.MechanismType) (*Mechanism, bool) {
	tb := loaded()
	if t < 1<<16 {
		if p := tb.byPage[t>>8]; p != nil {
			m := p[t&0xff]
			return m, m != nil
		}
		return nil, false
	}
	m, ok := tb.byType[t]
	return m, ok
}

// All returns every row sorted by Type (the order of C_GetMechanismList).
func All() []*Mechanism { return slices.Clone(loaded().sorted) }

// Flags returns the CK_MECHANISM_INFO flags of the row (PKCS#11 v3.0
// base specification, CK_MECHANISM_INFO; CKF_EC_* in Current Mechanisms,
// "Elliptic Curve").
func (m *Mechanism) Flags() ck.ULong {
	f := ck.CKF_HW
	for _, op := range []struct {
		set  bool
		flag ck.ULong
	}{
		{m.Encrypt != nil, ck.CKF_ENCRYPT},
		{m.Decrypt != nil, ck.CKF_DECRYPT},
		{m.Sign != nil, ck.CKF_SIGN},
		{m.Verify != nil, ck.CKF_VERIFY},
		{m.Digest != nil, ck.CKF_DIGEST},
		{m.GenerateKey != nil, ck.CKF_GENERATE},
		{m.GenerateKeyPair != nil, ck.CKF_GENERATE_KEY_PAIR},
		{m.Derive != nil, ck.CKF_DERIVE},
		{m.Wrap != nil, ck.CKF_WRAP},
		{m.Unwrap != nil, ck.CKF_UNWRAP},
		{m.SignRecover != nil, ck.CKF_SIGN_RECOVER},
		{m.VerifyRecover != nil, ck.CKF_VERIFY_RECOVER},
		{m.MessageEncrypt != nil, ck.CKF_MESSAGE_ENCRYPT},
		{m.MessageDecrypt != nil, ck.CKF_MESSAGE_DECRYPT},
		{m.Encapsulate != nil, ck.CKF_ENCAPSULATE},
		{m.Decapsulate != nil, ck.CKF_DECAPSULATE},
	} {
		if op.set {
			f |= op.flag
		}
	}
	if slices.Contains(m.KeyTypes, ck.CKK_EC) {
		// Prime-field curves named by OID, points uncompressed: exactly
		// what CurveFromParams and ECPoint accept and produce.
		f |= ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS
	}
	return f
}

// guard returns a copy of row whose constructors first check what the row
// itself says: the key size range and, for rows without a parameter, that
// none was given.
func guard(row Mechanism) *Mechanism {
	m := row
	if f := row.Encrypt; f != nil {
		m.Encrypt = func(key, param any) (Cipher, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Decrypt; f != nil {
		m.Decrypt = func(key, param any) (Cipher, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Sign; f != nil {
		m.Sign = func(key, param any) (Signer, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Verify; f != nil {
		m.Verify = func(key, param any) (Verifier, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Digest; f != nil {
		m.Digest = func(param any) (Digester, error) {
			if err := m.checkParam(param); err != nil {
				return nil, err
			}
			return f(param)
		}
	}
	if f := row.GenerateKey; f != nil {
		m.GenerateKey = func(rand io.Reader, p KeyGenParams) (any, error) {
			if err := m.checkKeyGen(p); err != nil {
				return nil, err
			}
			return f(rand, p)
		}
	}
	if f := row.GenerateKeyPair; f != nil {
		m.GenerateKeyPair = func(rand io.Reader, p KeyGenParams) (any, any, error) {
			if err := m.checkKeyGen(p); err != nil {
				return nil, nil, err
			}
			return f(rand, p)
		}
	}
	if f := row.Derive; f != nil {
		m.Derive = func(base, param any, t DeriveTarget) ([]byte, error) {
			if err := m.check(base, param); err != nil {
				return nil, err
			}
			return f(base, param, t)
		}
	}
	if f := row.Wrap; f != nil {
		m.Wrap = func(key, param any, material []byte) ([]byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param, material)
		}
	}
	if f := row.Unwrap; f != nil {
		m.Unwrap = func(key, param any, wrapped []byte) ([]byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param, wrapped)
		}
	}
	if f := row.SignRecover; f != nil {
		m.SignRecover = func(key, param any, data []byte) ([]byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param, data)
		}
	}
	if f := row.VerifyRecover; f != nil {
		m.VerifyRecover = func(key, param any, sig []byte) ([]byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param, sig)
		}
	}
	if f := row.MessageEncrypt; f != nil {
		m.MessageEncrypt = func(key, param any) (MessageAEAD, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.MessageDecrypt; f != nil {
		m.MessageDecrypt = func(key, param any) (MessageAEAD, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Encapsulate; f != nil {
		m.Encapsulate = func(key, param any) ([]byte, []byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, nil, err
			}
			return f(key, param)
		}
	}
	if f := row.Decapsulate; f != nil {
		m.Decapsulate = func(key, param any, ciphertext []byte) ([]byte, error) {
			if err := m.check(key, param); err != nil {
				return nil, err
			}
			return f(key, param, ciphertext)
		}
	}
	return &m
}

func (m *Mechanism) check(key, param any) error {
	if err := m.checkParam(param); err != nil {
		return err
	}
	key = unprepared(key)
	class, size := keyInfo(key)
	if class == classNone || !slices.ContainsFunc(m.KeyTypes, func(kt ck.KeyType) bool { return keyClasses[kt] == class }) {
		return fmt.Errorf("mechanisms: %v: key of type %T: %w", m.Type, key, ck.CKR_KEY_TYPE_INCONSISTENT)
	}
	if size < m.MinKeySize || size > m.MaxKeySize {
		return fmt.Errorf("mechanisms: %v: key size %d not in %d..%d: %w", m.Type, size, m.MinKeySize, m.MaxKeySize, ck.CKR_KEY_SIZE_RANGE)
	}
	return nil
}

// checkParam enforces the PKCS#11 v3.0 rule (CK_MECHANISM) for mechanisms that take no
// parameter: pParameter NULL_PTR and ulParameterLen 0. The C boundary passes
// nil (or an empty byte string) for that.
func (m *Mechanism) checkParam(param any) error {
	if m.Param != ParamNone {
		return nil
	}
	if b, ok := param.([]byte); param == nil || ok && len(b) == 0 {
		return nil
	}
	return fmt.Errorf("mechanisms: %v takes no parameter, got %T: %w", m.Type, param, ck.CKR_MECHANISM_PARAM_INVALID)
}

// checkKeyGen checks the size a key generation template asks for against
// the row. C_GenerateKey and C_GenerateKeyPair may not return
// CKR_KEY_SIZE_RANGE (PKCS#11 v3.0 return value lists of
// both functions): a size the token does not
// generate is an invalid attribute value, an unsupported curve
// CKR_CURVE_NOT_SUPPORTED, and a missing size an incomplete template.
func (m *Mechanism) checkKeyGen(p KeyGenParams) error {
	if len(m.KeyTypes) == 0 {
		return fmt.Errorf("mechanisms: %v: no key type: %w", m.Type, ck.CKR_GENERAL_ERROR)
	}
	var size int
	var name string
	tooBig := ck.CKR_ATTRIBUTE_VALUE_INVALID
	switch keyClasses[m.KeyTypes[0]] {
	case classRSA:
		size, name = p.ModulusBits, "CKA_MODULUS_BITS"
	case classEC, classEdwards, classMontgomery:
		if len(p.ECParams) == 0 {
			return fmt.Errorf("mechanisms: %v: no CKA_EC_PARAMS: %w", m.Type, ck.CKR_TEMPLATE_INCOMPLETE)
		}
		bits, err := keyGenCurveBits(keyClasses[m.KeyTypes[0]], p.ECParams)
		if err != nil {
			return err
		}
		size, name, tooBig = bits, "curve", ck.CKR_CURVE_NOT_SUPPORTED
	case classMLDSA:
		if p.ParameterSet == 0 {
			return fmt.Errorf("mechanisms: %v: no CKA_PARAMETER_SET: %w", m.Type, ck.CKR_TEMPLATE_INCOMPLETE)
		}
		params, err := MLDSAParameters(p.ParameterSet)
		if err != nil {
			return err
		}
		size, name = params.PublicKeySize(), "public key size"
	case classMLKEM:
		if p.ParameterSet == 0 {
			return fmt.Errorf("mechanisms: %v: no CKA_PARAMETER_SET: %w", m.Type, ck.CKR_TEMPLATE_INCOMPLETE)
		}
		bits, err := MLKEMParameterSetBits(p.ParameterSet)
		if err != nil {
			return err
		}
		size, name, tooBig = bits, "CKA_PARAMETER_SET", ck.CKR_PARAMETER_SET_NOT_SUPPORTED
	case classSecret:
		size, name = p.ValueLen, "CKA_VALUE_LEN"
		if size == 0 && m.MinKeySize == m.MaxKeySize {
			// Fixed-length key types (DES3) have no CKA_VALUE_LEN.
			size = int(m.MinKeySize)
		}
	default:
		return fmt.Errorf("mechanisms: %v: key generation for %v: %w", m.Type, m.KeyTypes[0], ck.CKR_GENERAL_ERROR)
	}
	if size == 0 {
		return fmt.Errorf("mechanisms: %v: no %s: %w", m.Type, name, ck.CKR_TEMPLATE_INCOMPLETE)
	}
	if size < 0 || uint(size) < m.MinKeySize || uint(size) > m.MaxKeySize {
		return fmt.Errorf("mechanisms: %v: %s %d not in %d..%d: %w", m.Type, name, size, m.MinKeySize, m.MaxKeySize, tooBig)
	}
	return nil
}
