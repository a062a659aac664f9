package profile

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
)

// Mechanisms is what the profile decides about mechanisms: which rows of
// the mechanism table a slot offers, for which operations, and the rules
// CloudHSM adds to some of them (input caps, single-part, HSM-made GCM
// IVs, OAEP pairing). The standard profile offers the whole table as it is
// and adds nothing: its Lookup is mechanisms.Lookup behind one branch.
type Mechanisms struct {
	// pages and vendor hold the profile's own rows (copies of the table's
	// with the operations the profile does not offer taken out), looked up
	// like mechanisms.Lookup does: two array loads below 1<<16, a map for
	// vendor types. nil pages: the standard profile (the table itself).
	pages  *[256]*[256]*entry
	vendor map[ck.MechanismType]*entry
	list   []ck.MechanismType // C_GetMechanismList's answer, in the table's order
}

// entry is one mechanism as a profile offers it.
type entry struct {
	row  *mechanisms.Mechanism
	rule *Rule
}

// Rule is what a profile adds to one mechanism beyond the table's row.
// The token keeps it in the operation (nil for the standard profile, so a
// standard operation pays one nil check per call).
type Rule struct {
	// MaxInput caps the bytes an operation may take (C_Encrypt / C_Sign /
	// C_Verify, or the sum of its C_*Update parts); 0 is no cap. Decryption
	// may take DecryptOverhead bytes more (the tag, or IV and tag), so that
	// what encryption of MaxInput bytes made decrypts.
	MaxInput        int
	DecryptOverhead int
	// NoUpdate: C_EncryptUpdate / C_DecryptUpdate are refused with this
	// code (CloudHSM's CKM_AES_GCM: CKR_MECHANISM_INVALID).
	NoUpdate ck.RV
	// HSMIV: encryption and wrapping make their own IV (CloudHSM's
	// CKM_AES_GCM): the caller's IV must be a zeroed 12-byte buffer, and
	// the IV made is written into it (CheckGCMIV).
	HSMIV bool
	// OAEPPairs: the OAEP hash and MGF must be one of the pairs SHA-1 /
	// MGF1-SHA1 ... SHA-512 / MGF1-SHA512 (CheckParam).
	OAEPPairs bool
}

func standardMechanisms() Mechanisms { return Mechanisms{} }

// Lookup returns the profile's row for a mechanism type and the profile's
// rule for it (nil when it adds none).
func (m *Mechanisms) Lookup(t ck.MechanismType) (*mechanisms.Mechanism, *Rule, bool) {
	if m.pages == nil { // standard: the table itself
		row, ok := mechanisms.Lookup(t)
		return row, nil, ok
	}
	return m.lookup(t)
}

func (m *Mechanisms) lookup(t ck.MechanismType) (*mechanisms.Mechanism, *Rule, bool) {
	var e *entry
	if t < 1<<16 {
		if p := m.pages[t>>8]; p != nil {
			e = p[t&0xff]
		}
	} else {
		e = m.vendor[t]
	}
	if e == nil {
		return nil, nil, false
	}
	return e.row, e.rule, true
}

// List is C_GetMechanismList's answer: every mechanism the profile offers,
// in the table's order.
func (m *Mechanisms) List() []ck.MechanismType {
	if m.pages == nil {
		all := mechanisms.All()
		out := make([]ck.MechanismType, len(all))
		for i, r := range all {
			out[i] = r.Type
		}
		return out
	}
	return slices.Clone(m.list)
}

// Operations a profile may offer a mechanism for (a row's constructors,
// grouped as CloudHSM's mechanism page groups them).
type ops uint8

const (
	opGen    ops = 1 << iota // GenerateKey, GenerateKeyPair
	opSign                   // Sign, Verify
	opDigest                 // Digest
	opCrypt                  // Encrypt, Decrypt
	opDerive                 // Derive
	opWrap                   // Wrap, Unwrap
)

// offersAny reports whether a narrowed row still does anything.
func offersAny(r *mechanisms.Mechanism) bool {
	return r.GenerateKey != nil || r.GenerateKeyPair != nil || r.Sign != nil || r.Verify != nil ||
		r.Digest != nil || r.Encrypt != nil || r.Decrypt != nil || r.Derive != nil || r.Wrap != nil || r.Unwrap != nil
}

// cloudhsmMech is one mechanism of AWS CloudHSM's Client SDK 5 list
// (cloudhsm-facts §2.5, from the User Guide's "Supported mechanisms for the
// PKCS #11 library"): the operations it is offered for and its rule.
type cloudhsmMech struct {
	t    ck.MechanismType
	ops  ops
	fips ops // operations refused in FIPS mode (footnote 5)
	rule Rule
}

// cloudhsmList is the SDK 5 mechanism list. Mechanisms of the list that the
// table has no row for are simply absent (a vendor mechanism before its row
// exists): never offered by name only.
//
// Not in it although the standard profile has them: CKM_AES_KEY_WRAP and
// CKM_AES_KEY_WRAP_PAD (SDK 5 lists only the CKM_CLOUDHSM_AES_KEY_WRAP_*
// vendor mechanisms; SDK 3's CKM_AES_KEY_WRAP padded like PKCS#5, so an
// application that needs it is better refused than given RFC 3394), the
// standard CKM_SP800_108_COUNTER_KDF (SDK 5's is the vendor 0x80000001),
// every SHA-3 and SHA-512/t mechanism, CKM_*_HMAC_GENERAL, CKM_AES_CMAC_GENERAL,
// CKM_AES_CCM, CKM_AES_KEY_WRAP_KWP, EdDSA and X25519, HKDF, PBKDF2, the
// concatenation and extraction derivations, CKM_ECDH1_COFACTOR_DERIVE,
// CKM_*_ENCRYPT_DATA, CKM_DES3_CMAC*, sign-recover (SDK 5 has none).
var cloudhsmList = []cloudhsmMech{
	// Key generation.
	{t: ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ops: opGen},
	{t: ck.CKM_RSA_X9_31_KEY_PAIR_GEN, ops: opGen},
	{t: ck.CKM_EC_KEY_PAIR_GEN, ops: opGen},
	{t: ck.CKM_GENERIC_SECRET_KEY_GEN, ops: opGen},
	{t: ck.CKM_AES_KEY_GEN, ops: opGen},
	{t: ck.CKM_DES3_KEY_GEN, ops: opGen, fips: opGen},
	// RSA: CKM_RSA_PKCS is PKCS#1 v1.5 signatures everywhere, encryption
	// and wrapping only outside FIPS mode (footnote 5).
	{t: ck.CKM_RSA_X_509, ops: opSign | opCrypt},
	{t: ck.CKM_RSA_PKCS, ops: opSign | opCrypt | opWrap, fips: opCrypt | opWrap},
	{t: ck.CKM_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_RSA_PKCS_OAEP, ops: opCrypt | opWrap, rule: Rule{OAEPPairs: true}},
	{t: ck.CKM_SHA1_RSA_PKCS, ops: opSign},
	{t: ck.CKM_SHA224_RSA_PKCS, ops: opSign},
	{t: ck.CKM_SHA256_RSA_PKCS, ops: opSign},
	{t: ck.CKM_SHA384_RSA_PKCS, ops: opSign},
	{t: ck.CKM_SHA512_RSA_PKCS, ops: opSign},
	{t: ck.CKM_SHA1_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_SHA224_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_SHA256_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_SHA384_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_SHA512_RSA_PKCS_PSS, ops: opSign},
	{t: ck.CKM_RSA_AES_KEY_WRAP, ops: opWrap},
	// ECDSA and ECDH.
	{t: ck.CKM_ECDSA, ops: opSign},
	{t: ck.CKM_ECDSA_SHA1, ops: opSign},
	{t: ck.CKM_ECDSA_SHA224, ops: opSign},
	{t: ck.CKM_ECDSA_SHA256, ops: opSign},
	{t: ck.CKM_ECDSA_SHA384, ops: opSign},
	{t: ck.CKM_ECDSA_SHA512, ops: opSign},
	{t: ck.CKM_ECDH1_DERIVE, ops: opDerive},
	// Digests (hashed in the client: no cap).
	{t: ck.CKM_SHA_1, ops: opDigest},
	{t: ck.CKM_SHA224, ops: opDigest},
	{t: ck.CKM_SHA256, ops: opDigest},
	{t: ck.CKM_SHA384, ops: opDigest},
	{t: ck.CKM_SHA512, ops: opDigest},
	// HMAC runs inside the HSM: capped (footnote 2 and "Maximum data
	// size for each mechanism").
	{t: ck.CKM_SHA_1_HMAC, ops: opSign, rule: Rule{MaxInput: 16288}},
	{t: ck.CKM_SHA224_HMAC, ops: opSign, rule: Rule{MaxInput: 16256}},
	{t: ck.CKM_SHA256_HMAC, ops: opSign, rule: Rule{MaxInput: 16288}},
	{t: ck.CKM_SHA384_HMAC, ops: opSign, rule: Rule{MaxInput: 16224}},
	{t: ck.CKM_SHA512_HMAC, ops: opSign, rule: Rule{MaxInput: 16224}},
	{t: ck.CKM_AES_CMAC, ops: opSign},
	// AES and 3DES.
	{t: ck.CKM_AES_ECB, ops: opCrypt},
	{t: ck.CKM_AES_CTR, ops: opCrypt},
	{t: ck.CKM_AES_CBC, ops: opCrypt, rule: Rule{MaxInput: 16272}},
	{t: ck.CKM_AES_CBC_PAD, ops: opCrypt},
	{t: ck.CKM_AES_GCM, ops: opCrypt | opWrap,
		rule: Rule{MaxInput: 16224, DecryptOverhead: 16, NoUpdate: ck.CKR_MECHANISM_INVALID, HSMIV: true}},
	{t: ck.CKM_DES3_ECB, ops: opCrypt, fips: opCrypt},
	{t: ck.CKM_DES3_CBC, ops: opCrypt, fips: opCrypt, rule: Rule{MaxInput: 16280}},
	{t: ck.CKM_DES3_CBC_PAD, ops: opCrypt, fips: opCrypt},
	// Vendor mechanisms (cloudhsm-facts §2.6).
	{t: ck.CKM_CLOUDHSM_AES_GCM, ops: opCrypt | opWrap,
		rule: Rule{MaxInput: 16224, DecryptOverhead: 12 + 16, NoUpdate: ck.CKR_MECHANISM_INVALID}},
	{t: ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, ops: opWrap},
	{t: ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, ops: opWrap},
	{t: ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, ops: opWrap},
	{t: ck.CKM_CLOUDHSM_SP800_108_COUNTER_KDF, ops: opDerive},
}

func cloudhsmMechanisms(s Settings) Mechanisms {
	return narrowed(cloudhsmList, s.FIPS, mechanisms.Lookup)
}

// narrowed builds a profile's lookup from its list: for each mechanism the
// table has, a copy of its row with only the offered operations' constructors
// (so CK_MECHANISM_INFO's flags, derived from them, say what the profile
// offers, and an operation it does not offer is CKR_MECHANISM_INVALID where
// the table's would be), and without the 3.0 message-based functions
// (CloudHSM's library is 2.40). A mechanism left with no operation is absent.
func narrowed(list []cloudhsmMech, fips bool, lookup func(ck.MechanismType) (*mechanisms.Mechanism, bool)) Mechanisms {
	m := Mechanisms{pages: new([256]*[256]*entry), vendor: map[ck.MechanismType]*entry{}}
	var offered []*mechanisms.Mechanism
	for _, c := range list {
		row, ok := lookup(c.t)
		if !ok {
			continue
		}
		o := c.ops
		if fips {
			o &^= c.fips
		}
		r := *row
		if o&opGen == 0 {
			r.GenerateKey, r.GenerateKeyPair = nil, nil
		}
		if o&opSign == 0 {
			r.Sign, r.Verify = nil, nil
		}
		if o&opDigest == 0 {
			r.Digest = nil
		}
		if o&opCrypt == 0 {
			r.Encrypt, r.Decrypt = nil, nil
		}
		if o&opDerive == 0 {
			r.Derive = nil
		}
		if o&opWrap == 0 {
			r.Wrap, r.Unwrap = nil, nil
		}
		r.SignRecover, r.VerifyRecover = nil, nil
		r.MessageEncrypt, r.MessageDecrypt = nil, nil
		if !offersAny(&r) {
			continue // nothing left (3DES in FIPS mode)
		}
		e := &entry{row: &r}
		if c.rule != (Rule{}) {
			rule := c.rule
			e.rule = &rule
		}
		if c.t < 1<<16 {
			hi := c.t >> 8
			if m.pages[hi] == nil {
				m.pages[hi] = new([256]*entry)
			}
			m.pages[hi][c.t&0xff] = e
		} else {
			m.vendor[c.t] = e
		}
		offered = append(offered, &r)
	}
	// The table's order (by type), as the standard profile lists.
	slices.SortFunc(offered, func(a, b *mechanisms.Mechanism) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	for _, r := range offered {
		m.list = append(m.list, r.Type)
	}
	return m
}

// oaepPairs are the OAEP hash / MGF pairs CloudHSM accepts (footnote 4:
// "the hash and MGF must match").
var oaepPairs = map[ck.MechanismType]ck.ULong{
	ck.CKM_SHA_1:  ck.CKG_MGF1_SHA1,
	ck.CKM_SHA224: ck.CKG_MGF1_SHA224,
	ck.CKM_SHA256: ck.CKG_MGF1_SHA256,
	ck.CKM_SHA384: ck.CKG_MGF1_SHA384,
	ck.CKM_SHA512: ck.CKG_MGF1_SHA512,
}

// CheckParam applies the rule to a mechanism's decoded parameter at
// C_*Init, C_WrapKey and C_UnwrapKey: an OAEP hash with another MGF, or
// outside SHA-1..SHA-512, is CKR_MECHANISM_PARAM_INVALID.
func (r *Rule) CheckParam(param any) error {
	if r == nil || !r.OAEPPairs {
		return nil
	}
	p, ok := param.(*mechanisms.OAEPParams)
	if !ok || p == nil {
		return nil // the row's own check names the missing parameter
	}
	if mgf, ok := oaepPairs[p.Hash]; !ok || mgf != p.MGF {
		return fmt.Errorf("profile: rsa-oaep: hash %v with mgf 0x%x: the hash and MGF1 hash must be the same, SHA-1 to SHA-512: %w",
			p.Hash, uint64(p.MGF), ck.CKR_MECHANISM_PARAM_INVALID)
	}
	return nil
}

// GCMIVLen is the IV CloudHSM makes for CKM_AES_GCM: 12 bytes.
const GCMIVLen = 12

// TakeGCMIV applies CloudHSM's CKM_AES_GCM rule to an encryption's (or a
// wrap's) parameter: the IV buffer must be 12 bytes of zeros (SDK 5:
// "Iv invalid. Reason: Expect IV to be all 0"; an empty one: "Expected
// 'ulIvBits' or 'ulIvLen' to be non-zero"), both CKR_MECHANISM_PARAM_INVALID;
// then the HSM's IV replaces it, and the parameter says so (IVGenerated) so
// that the C boundary writes it into the caller's pIv.
func (r *Rule) TakeGCMIV(param any, rand io.Reader) error {
	if r == nil || !r.HSMIV {
		return nil
	}
	p, ok := param.(*mechanisms.GCMParams)
	if !ok || p == nil {
		return fmt.Errorf("profile: aes-gcm: no CK_GCM_PARAMS: %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	switch {
	case len(p.IV) == 0:
		return fmt.Errorf("profile: aes-gcm: ulIvLen is 0: the HSM writes a %d-byte IV into pIv: %w", GCMIVLen, ck.CKR_MECHANISM_PARAM_INVALID)
	case len(p.IV) != GCMIVLen:
		return fmt.Errorf("profile: aes-gcm: ulIvLen %d: the HSM makes a %d-byte IV: %w", len(p.IV), GCMIVLen, ck.CKR_MECHANISM_PARAM_INVALID)
	case p.IVBits != 0 && p.IVBits != 8*GCMIVLen:
		return fmt.Errorf("profile: aes-gcm: ulIvBits %d with ulIvLen %d: %w", p.IVBits, len(p.IV), ck.CKR_MECHANISM_PARAM_INVALID)
	case !bytes.Equal(p.IV, make([]byte, GCMIVLen)):
		return fmt.Errorf("profile: aes-gcm: the IV must be all 0 (the HSM makes it): %w", ck.CKR_MECHANISM_PARAM_INVALID)
	}
	if _, err := io.ReadFull(rand, p.IV); err != nil {
		return fmt.Errorf("profile: aes-gcm: iv: %v: %w", err, ck.CKR_FUNCTION_FAILED)
	}
	p.IVGenerated = true
	return nil
}

// InputLimit is the rule's cap on an operation's input: MaxInput, plus the
// overhead for decryption; 0 is no cap.
func (r *Rule) InputLimit(decrypt bool) int {
	if r == nil || r.MaxInput == 0 {
		return 0
	}
	if decrypt {
		return r.MaxInput + r.DecryptOverhead
	}
	return r.MaxInput
}
