package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/cluster"
)

// SignRecoverInit answers C_SignRecoverInit.
func (m *Module) SignRecoverInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opSignRecover, mech, key)
}

// VerifyRecoverInit answers C_VerifyRecoverInit.
func (m *Module) VerifyRecoverInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opVerifyRecover, mech, key)
}

// SignRecover answers C_SignRecover.
func (m *Module) SignRecover(h ck.ULong, data []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opSignRecover)
	if err != nil {
		return 0, err
	}
	defer se.done(opSignRecover, &err, true, out.Query)
	max, err := recoverSize(op.key)
	if err != nil {
		return 0, err
	}
	return deliver(op, out, max, func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncNone, op.cls); err != nil {
				return nil, err
			}
		}
		sig, err := op.mech.SignRecover(op.key, op.param, data)
		return append(dst, sig...), err
	})
}

// VerifyRecover answers C_VerifyRecover.
func (m *Module) VerifyRecover(h ck.ULong, sig []byte, out Out) (n int, err error) {
	se, op, err := m.activeOp(h, opVerifyRecover)
	if err != nil {
		return 0, err
	}
	defer se.done(opVerifyRecover, &err, true, out.Query)
	max, err := recoverSize(op.key)
	if err != nil {
		return 0, err
	}
	return deliver(op, out, max, func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncNone, op.cls); err != nil {
				return nil, err
			}
		}
		data, err := op.mech.VerifyRecover(op.key, op.param, sig)
		return append(dst, data...), err
	})
}

// recoverSize bounds a recover output: the modulus length for RSA keys.
func recoverSize(key any) (int, error) {
	if n := mechanisms.ModulusBytes(key); n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("token: recover with %T: %w", key, ck.CKR_KEY_TYPE_INCONSISTENT)
}
