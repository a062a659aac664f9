package main

/*
#include "bench.h"
*/
import "C"

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"gohsm/internal/ck"
)

// p256 is prime256v1 as a DER OID (CKA_EC_PARAMS).
var p256 = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// Labels of what the benchmark creates.
const (
	labelEC      = "p11bench-ec-p256"
	labelRSA     = "p11bench-rsa-2048"
	labelAES     = "p11bench-aes-256"
	labelHMAC    = "p11bench-hmac-32"
	labelMLKEM   = "p11bench-ml-kem-768"
	labelMLDSA   = "p11bench-mldsa-65"
	labelGen     = "p11bench-generated"
	findPrefix   = "p11bench-obj-"
	findApp      = "p11bench"
	maxSessions  = 8
	defaultPIN   = "p11bench-user"
	defaultSOPIN = "p11bench-so"
)

// token is an initialised token the user is logged in to, through a
// session that stays open for the whole run.
type token struct {
	slot  C.CK_SLOT_ID
	label string
	admin C.CK_SESSION_HANDLE
}

// key is a key the operations use, or why it is missing.
type key struct {
	h           C.CK_OBJECT_HANDLE
	pub         C.CK_OBJECT_HANDLE // a pair's public half
	unsupported string
}

// module is one module under test with its tokens and keys.
type module struct {
	name, path string
	soPIN, pin string
	info       string
	*p11
	mechs          map[ck.MechanismType]bool
	main, find     token
	ec, rsa, mldsa key
	aes, hmac      key
	// ML-KEM-768 (PKCS #11 3.2): the pair's halves.
	mlkemPub, mlkemPriv key
	findObjects         int
	findSetup           string // how the find objects came to be, for the report
	findSetupTime       time.Duration
	mainSetupTime       time.Duration
	sameFindToken       bool
	workers             []*worker // sessions on the main token
	findWorkers         []*worker // sessions on the find token
	harnessOverhead     time.Duration
}

// openToken finds the token labelled label or initialises a fresh one,
// makes sure the user PIN is set, and logs the user in.
func (m *module) openToken(label string) (token, error) {
	slot, ok, err := m.slotByLabel(label)
	if err != nil {
		return token{}, err
	}
	if !ok {
		fresh, found, err := m.freeSlot()
		if err != nil {
			return token{}, err
		}
		if !found {
			return token{}, fmt.Errorf("p11bench: %s: no token labelled %q and no uninitialised token to initialise", m.name, label)
		}
		if err := m.initToken(fresh, m.soPIN, label); err != nil {
			return token{}, err
		}
		// SoftHSMv2 moves an initialised token to a new slot ID: find it
		// again by label.
		if slot, ok, err = m.slotByLabel(label); err != nil {
			return token{}, err
		} else if !ok {
			return token{}, fmt.Errorf("p11bench: %s: token %q initialised but not found again", m.name, label)
		}
	}
	ti, err := m.tokenInfo(slot)
	if err != nil {
		return token{}, err
	}
	if ti.flags&C.CKF_USER_PIN_INITIALIZED == 0 {
		s, err := m.openSession(slot)
		if err != nil {
			return token{}, err
		}
		err = m.login(s, C.CKU_SO, m.soPIN)
		if err == nil {
			err = m.initPIN(s, m.pin)
			err = errors.Join(err, m.logout(s))
		}
		if err = errors.Join(err, m.closeSession(s)); err != nil {
			return token{}, err
		}
	}
	s, err := m.openSession(slot)
	if err != nil {
		return token{}, err
	}
	if err := m.login(s, C.CKU_USER, m.pin); err != nil {
		return token{}, err
	}
	return token{slot: slot, label: label, admin: s}, nil
}

func (m *module) slotByLabel(label string) (C.CK_SLOT_ID, bool, error) {
	slots, err := m.slots()
	if err != nil {
		return 0, false, err
	}
	for _, s := range slots {
		ti, err := m.tokenInfo(s)
		if err != nil {
			return 0, false, err
		}
		if ti.initialized && ti.label == label {
			return s, true, nil
		}
	}
	return 0, false, nil
}

func (m *module) freeSlot() (C.CK_SLOT_ID, bool, error) {
	slots, err := m.slots()
	if err != nil {
		return 0, false, err
	}
	for _, s := range slots {
		ti, err := m.tokenInfo(s)
		if err != nil {
			return 0, false, err
		}
		if !ti.initialized {
			return s, true, nil
		}
	}
	return 0, false, nil
}

func (m *module) findOne(s C.CK_SESSION_HANDLE, class uint, label string) (C.CK_OBJECT_HANDLE, bool, error) {
	hs, err := m.p11.find(s, []attr{{ck.CKA_CLASS, ulong(class)}, {ck.CKA_LABEL, []byte(label)}}, 1)
	if err != nil || len(hs) == 0 {
		return 0, false, err
	}
	return hs[0], true, nil
}

func unsupportedMech(err error) bool {
	return errors.Is(err, ck.CKR_MECHANISM_INVALID) || errors.Is(err, ck.CKR_FUNCTION_NOT_SUPPORTED)
}

// keyPair finds the private key labelled label or generates the pair.
func (m *module) keyPair(gen ck.MechanismType, label string, pub, priv []attr) (key, error) {
	if !m.mechs[gen] {
		return key{unsupported: fmt.Sprintf("%s not in C_GetMechanismList", mechName(gen))}, nil
	}
	s := m.main.admin
	if h, ok, err := m.findOne(s, C.CKO_PRIVATE_KEY, label); err != nil || ok {
		if err != nil {
			return key{}, err
		}
		p, _, err := m.findOne(s, C.CKO_PUBLIC_KEY, label)
		return key{h: h, pub: p}, err
	}
	p, h, err := m.generateKeyPair(s, gen, pub, priv)
	if unsupportedMech(err) {
		return key{unsupported: err.Error()}, nil
	}
	return key{h: h, pub: p}, err
}

// secretKey finds the secret key labelled label, or generates it, or
// (when the generation mechanism is missing) imports random bytes.
func (m *module) secretKey(gen ck.MechanismType, keyType uint, label string, usage []attr) (key, error) {
	s := m.main.admin
	if h, ok, err := m.findOne(s, C.CKO_SECRET_KEY, label); err != nil || ok {
		return key{h: h}, err
	}
	common := append([]attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PRIVATE, boolean(true)},
		{ck.CKA_SENSITIVE, boolean(true)},
		{ck.CKA_LABEL, []byte(label)},
	}, usage...)
	if m.mechs[gen] {
		h, err := m.generateKey(s, gen, append(common, attr{ck.CKA_VALUE_LEN, ulong(32)}))
		if !unsupportedMech(err) {
			return key{h: h}, err
		}
	}
	value := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, value); err != nil {
		return key{}, fmt.Errorf("p11bench: key bytes: %w", err)
	}
	h, err := m.createObject(s, append(common,
		attr{ck.CKA_CLASS, ulong(C.CKO_SECRET_KEY)}, attr{ck.CKA_KEY_TYPE, ulong(keyType)}, attr{ck.CKA_VALUE, value}))
	if err != nil {
		return key{unsupported: fmt.Sprintf("%s missing and import failed: %v", mechName(gen), err)}, nil
	}
	return key{h: h}, nil
}

func mechName(m ck.MechanismType) string { return m.String() }

// kemPair finds the ML-KEM-768 pair labelled labelMLKEM or generates it.
func (m *module) kemPair() (pub, priv key, err error) {
	if !m.mechs[ck.CKM_ML_KEM_KEY_PAIR_GEN] || !m.mechs[ck.CKM_ML_KEM] || m.f32 == nil {
		why := key{unsupported: "no ML-KEM (CKM_ML_KEM_KEY_PAIR_GEN, CKM_ML_KEM and a 3.2 interface)"}
		return why, why, nil
	}
	s := m.main.admin
	ph, pok, err := m.findOne(s, C.CKO_PUBLIC_KEY, labelMLKEM)
	if err != nil {
		return key{}, key{}, err
	}
	kh, kok, err := m.findOne(s, C.CKO_PRIVATE_KEY, labelMLKEM)
	if err != nil {
		return key{}, key{}, err
	}
	if pok && kok {
		return key{h: ph}, key{h: kh}, nil
	}
	ph, kh, err = m.generateKeyPair(s, ck.CKM_ML_KEM_KEY_PAIR_GEN, []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PARAMETER_SET, ulong(C.CKP_ML_KEM_768)},
		{ck.CKA_ENCAPSULATE, boolean(true)},
		{ck.CKA_LABEL, []byte(labelMLKEM)},
	}, []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PRIVATE, boolean(true)},
		{ck.CKA_SENSITIVE, boolean(true)},
		{ck.CKA_DECAPSULATE, boolean(true)},
		{ck.CKA_LABEL, []byte(labelMLKEM)},
	})
	if unsupportedMech(err) {
		why := key{unsupported: err.Error()}
		return why, why, nil
	}
	return key{h: ph}, key{h: kh}, err
}

// kemSecretAttrs is the template of the key C_EncapsulateKey and
// C_DecapsulateKey make: a session AES-256 key.
func kemSecretAttrs() []attr {
	return []attr{
		{ck.CKA_CLASS, ulong(C.CKO_SECRET_KEY)},
		{ck.CKA_KEY_TYPE, ulong(C.CKK_AES)},
		{ck.CKA_TOKEN, boolean(false)},
		{ck.CKA_SENSITIVE, boolean(true)},
		{ck.CKA_ENCRYPT, boolean(true)},
		{ck.CKA_DECRYPT, boolean(true)},
	}
}

func privateKeyAttrs(label string) []attr {
	return []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PRIVATE, boolean(true)},
		{ck.CKA_SENSITIVE, boolean(true)},
		{ck.CKA_SIGN, boolean(true)},
		{ck.CKA_LABEL, []byte(label)},
	}
}

func ecPublicAttrs(label string) []attr {
	return []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_EC_PARAMS, p256},
		{ck.CKA_VERIFY, boolean(true)},
		{ck.CKA_LABEL, []byte(label)},
	}
}

func aesKeyAttrs(label string) []attr {
	return []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PRIVATE, boolean(true)},
		{ck.CKA_SENSITIVE, boolean(true)},
		{ck.CKA_ENCRYPT, boolean(true)},
		{ck.CKA_DECRYPT, boolean(true)},
		{ck.CKA_VALUE_LEN, ulong(32)},
		{ck.CKA_LABEL, []byte(label)},
	}
}

// setup opens the tokens, creates the keys and the find objects, and opens
// one session per worker.
func (m *module) setup(cfg *config) error {
	start := time.Now()
	var err error
	if m.info, err = m.p11.info(); err != nil {
		return err
	}
	if m.main, err = m.openToken(cfg.label); err != nil {
		return err
	}
	if m.mechs, err = m.mechanisms(m.main.slot); err != nil {
		return err
	}
	if m.ec, err = m.keyPair(ck.CKM_EC_KEY_PAIR_GEN, labelEC, ecPublicAttrs(labelEC), privateKeyAttrs(labelEC)); err != nil {
		return fmt.Errorf("p11bench: %s: EC key: %w", m.name, err)
	}
	rsaPub := []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_MODULUS_BITS, ulong(2048)},
		{ck.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}},
		{ck.CKA_VERIFY, boolean(true)},
		{ck.CKA_LABEL, []byte(labelRSA)},
	}
	if m.rsa, err = m.keyPair(ck.CKM_RSA_PKCS_KEY_PAIR_GEN, labelRSA, rsaPub, privateKeyAttrs(labelRSA)); err != nil {
		return fmt.Errorf("p11bench: %s: RSA key: %w", m.name, err)
	}
	mldsaPub := []attr{
		{ck.CKA_TOKEN, boolean(true)},
		{ck.CKA_PARAMETER_SET, ulong(uint(ck.CKP_ML_DSA_65))},
		{ck.CKA_VERIFY, boolean(true)},
		{ck.CKA_LABEL, []byte(labelMLDSA)},
	}
	if m.mldsa, err = m.keyPair(ck.CKM_ML_DSA_KEY_PAIR_GEN, labelMLDSA, mldsaPub, privateKeyAttrs(labelMLDSA)); err != nil {
		return fmt.Errorf("p11bench: %s: ML-DSA key: %w", m.name, err)
	}
	if m.aes, err = m.secretKey(ck.CKM_AES_KEY_GEN, C.CKK_AES, labelAES,
		[]attr{{ck.CKA_ENCRYPT, boolean(true)}, {ck.CKA_DECRYPT, boolean(true)}}); err != nil {
		return fmt.Errorf("p11bench: %s: AES key: %w", m.name, err)
	}
	if m.mechs[ck.CKM_SHA256_HMAC] {
		if m.hmac, err = m.secretKey(ck.CKM_GENERIC_SECRET_KEY_GEN, C.CKK_GENERIC_SECRET, labelHMAC,
			[]attr{{ck.CKA_SIGN, boolean(true)}, {ck.CKA_VERIFY, boolean(true)}}); err != nil {
			return fmt.Errorf("p11bench: %s: HMAC key: %w", m.name, err)
		}
	} else {
		m.hmac = key{unsupported: "CKM_SHA256_HMAC not in C_GetMechanismList"}
	}
	if m.mlkemPub, m.mlkemPriv, err = m.kemPair(); err != nil {
		return fmt.Errorf("p11bench: %s: ML-KEM key: %w", m.name, err)
	}
	m.mainSetupTime = time.Since(start)

	log.Printf("%s: %s; token %q slot %d; keys ready in %v", m.name, m.info, m.main.label, m.main.slot,
		m.mainSetupTime.Round(time.Millisecond))
	for range cfg.maxSessions() {
		w, err := m.newWorker(m.main)
		if err != nil {
			return err
		}
		m.workers = append(m.workers, w)
	}
	return nil
}

// setupFind opens the find token, makes its objects and its sessions. It
// runs just before the find operation (the last one), so that no other
// operation runs in a process that has handles for all those objects:
// SoftHSM's C_CloseSession, for one, walks every object handle the
// process holds.
func (m *module) setupFind(cfg *config) error {
	if m.findWorkers != nil {
		return nil
	}
	var err error
	m.sameFindToken = cfg.findLabel == cfg.label
	if m.sameFindToken {
		m.find = m.main
	} else if m.find, err = m.openToken(cfg.findLabel); err != nil {
		return err
	}
	start := time.Now()
	if err := m.findSetupObjects(cfg.objects); err != nil {
		return fmt.Errorf("p11bench: %s: find objects: %w", m.name, err)
	}
	m.findSetupTime = time.Since(start)
	log.Printf("%s: find token %q slot %d: %s in %v", m.name, m.find.label, m.find.slot, m.findSetup,
		m.findSetupTime.Round(time.Millisecond))
	for range cfg.maxSessions() {
		w, err := m.newWorker(m.find)
		if err != nil {
			return err
		}
		m.findWorkers = append(m.findWorkers, w)
	}
	return nil
}

// findSetupObjects makes sure the find token holds exactly n data objects
// labelled findPrefix+00000.., reusing them when a previous run made them.
func (m *module) findSetupObjects(n int) error {
	s := m.find.admin
	marker := []attr{{ck.CKA_CLASS, ulong(C.CKO_DATA)}, {ck.CKA_APPLICATION, []byte(findApp)}}
	have, err := m.p11.find(s, marker, 0)
	if err != nil {
		return err
	}
	m.findObjects = n
	if len(have) == n {
		// Spot-check the first and last labels.
		for _, i := range []int{0, n - 1} {
			if _, ok, err := m.findOne(s, C.CKO_DATA, fmt.Sprintf("%s%05d", findPrefix, i)); err != nil || !ok {
				return fmt.Errorf("label %d missing among %d existing objects (%v)", i, n, err)
			}
		}
		m.findSetup = fmt.Sprintf("reused %d data objects", n)
		return nil
	}
	for _, h := range have {
		if err := m.destroy(s, h); err != nil {
			return err
		}
	}
	for i := range n {
		_, err := m.createObject(s, []attr{
			{ck.CKA_CLASS, ulong(C.CKO_DATA)},
			{ck.CKA_TOKEN, boolean(true)},
			{ck.CKA_PRIVATE, boolean(true)},
			{ck.CKA_LABEL, []byte(fmt.Sprintf("%s%05d", findPrefix, i))},
			{ck.CKA_APPLICATION, []byte(findApp)},
			{ck.CKA_VALUE, []byte(fmt.Sprintf("value %05d", i))},
		})
		if err != nil {
			return fmt.Errorf("object %d: %w", i, err)
		}
	}
	m.findSetup = fmt.Sprintf("created %d data objects (removed %d stale)", n, len(have))
	return nil
}
