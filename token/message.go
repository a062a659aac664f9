package token

import (
	"fmt"

	"gohsm/internal/ck"
	"gohsm/mechanisms"
	"gohsm/token/cluster"
)

// The 3.0 message-based encryption functions (spec 5.13-5.14 of v3.0):
// C_MessageEncryptInit starts a context in which each message is encrypted
// whole (C_EncryptMessage) or in parts (C_EncryptMessageBegin, then
// C_EncryptMessageNext until CKF_END_OF_MESSAGE); C_MessageEncryptFinal
// ends the context. Per-message parameters (IV, tag) travel in
// mechanisms.MessageParams; the C boundary copies generated IVs and tags
// back into the caller's structure when a call returns CKR_OK.

// MessageEncryptInit answers C_MessageEncryptInit.
func (m *Module) MessageEncryptInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opMessageEncrypt, mech, key)
}

// MessageDecryptInit answers C_MessageDecryptInit.
func (m *Module) MessageDecryptInit(h ck.ULong, mech Mechanism, key ck.ULong) error {
	return m.initOp(h, opMessageDecrypt, mech, key)
}

func msgKind(encrypt bool) opKind {
	if encrypt {
		return opMessageEncrypt
	}
	return opMessageDecrypt
}

// savedParams keeps, with a pending output, the IV and tag the message was
// processed with, so the retry after a short buffer hands them out too.
func restoreParams(op *operation, p *mechanisms.MessageParams) {
	if op.hasPending && op.msgParam != nil {
		copy(p.IV, op.msgParam.IV)
		copy(p.Tag, op.msgParam.Tag)
	}
}

// Message answers C_EncryptMessage / C_DecryptMessage: one whole message.
// The message context stays active afterwards (errors included: only
// C_Message*Final ends it).
func (m *Module) Message(h ck.ULong, encrypt bool, p *mechanisms.MessageParams, aad, in []byte, out Out) (int, error) {
	kind := msgKind(encrypt)
	se, op, err := m.activeOp(h, kind)
	if err != nil {
		return 0, err
	}
	defer se.mu.Unlock()
	if op.inMsg {
		return 0, fmt.Errorf("token: a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	if p == nil {
		return 0, fmt.Errorf("token: message parameters required: %w", ck.CKR_ARGUMENTS_BAD)
	}
	restoreParams(op, p)
	n, err := deliver(op, out, len(in), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncNone, op.cls); err != nil {
				return nil, err
			}
		}
		if encrypt {
			return op.aead.Encrypt(dst, p, aad, in)
		}
		return op.aead.Decrypt(dst, p, aad, in)
	})
	if op.hasPending {
		op.msgParam = cloneParams(p)
	} else {
		op.msgParam = nil
	}
	return n, err
}

func cloneParams(p *mechanisms.MessageParams) *mechanisms.MessageParams {
	q := *p
	q.IV = append([]byte(nil), p.IV...)
	q.Tag = append([]byte(nil), p.Tag...)
	return &q
}

// maxMessageBuffered bounds a multi-part message's parts, which are held
// until its last part: 1 GiB, as the mechanisms bound what they buffer
// (Go's out-of-memory is fatal to the host). Tests lower it.
var maxMessageBuffered = 1 << 30

// MessageBegin answers C_EncryptMessageBegin / C_DecryptMessageBegin.
func (m *Module) MessageBegin(h ck.ULong, encrypt bool, p *mechanisms.MessageParams, aad []byte) error {
	se, op, err := m.activeOp(h, msgKind(encrypt))
	if err != nil {
		return err
	}
	defer se.mu.Unlock()
	if op.inMsg {
		return fmt.Errorf("token: a multi-part message is in progress: %w", ck.CKR_OPERATION_ACTIVE)
	}
	if p == nil {
		return fmt.Errorf("token: message parameters required: %w", ck.CKR_ARGUMENTS_BAD)
	}
	op.inMsg = true
	op.msgParam = cloneParams(p)
	op.msgAAD = append([]byte(nil), aad...)
	op.msgBuf = op.msgBuf[:0]
	return nil
}

// MessageNext answers C_EncryptMessageNext / C_DecryptMessageNext: parts
// are collected, and the last one (end set) produces the whole output.
func (m *Module) MessageNext(h ck.ULong, encrypt bool, p *mechanisms.MessageParams, part []byte, out Out, end bool) (int, error) {
	se, op, err := m.activeOp(h, msgKind(encrypt))
	if err != nil {
		return 0, err
	}
	defer se.mu.Unlock()
	if !op.inMsg {
		return 0, fmt.Errorf("token: no message begun: %w", ck.CKR_OPERATION_NOT_INITIALIZED)
	}
	if !op.hasPending && len(part) > maxMessageBuffered-len(op.msgBuf) {
		// The message is over: its parts are dropped.
		op.inMsg, op.msgAAD = false, nil
		clear(op.msgBuf)
		op.msgBuf = op.msgBuf[:0]
		return 0, fmt.Errorf("token: message of more than %d bytes held in memory: %w", maxMessageBuffered, ck.CKR_DEVICE_MEMORY)
	}
	if !end {
		op.msgBuf = append(op.msgBuf, part...)
		return 0, nil
	}
	if !op.hasPending {
		op.msgBuf = append(op.msgBuf, part...)
	}
	if p == nil {
		p = op.msgParam
	}
	restoreParams(op, p)
	n, err := deliver(op, out, len(op.msgBuf), func(dst []byte) ([]byte, error) {
		if op.cl != nil {
			if err := op.clusterCall(cluster.FuncNone, op.cls); err != nil {
				return nil, err
			}
		}
		q := op.msgParam
		q.Tag = p.Tag
		if len(q.Tag) == 0 {
			q.Tag = make([]byte, (q.TagBits+7)/8)
		}
		var res []byte
		var err error
		if encrypt {
			res, err = op.aead.Encrypt(dst, q, op.msgAAD, op.msgBuf)
		} else {
			res, err = op.aead.Decrypt(dst, q, op.msgAAD, op.msgBuf)
		}
		copy(p.IV, q.IV)
		copy(p.Tag, q.Tag)
		return res, err
	})
	if op.hasPending {
		op.msgParam = cloneParams(p)
		return n, err
	}
	if out.Query {
		return n, err
	}
	// The message is over, successfully or not.
	op.inMsg, op.msgAAD = false, nil
	clear(op.msgBuf)
	op.msgBuf = op.msgBuf[:0]
	return n, err
}

// MessageFinal answers C_MessageEncryptFinal / C_MessageDecryptFinal.
func (m *Module) MessageFinal(h ck.ULong, encrypt bool) error {
	kind := msgKind(encrypt)
	se, _, err := m.activeOp(h, kind)
	if err != nil {
		return err
	}
	se.endOp(kind)
	se.mu.Unlock()
	return nil
}
