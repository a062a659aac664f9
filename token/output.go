package token

import (
	"fmt"

	"gohsm/internal/ck"
)

// Out is a caller's output buffer. Query is set when the caller passed no
// buffer and only wants the length (pBuf == NULL_PTR).
type Out struct {
	Buf   []byte
	Query bool
}

// deliver is the one implementation of Cryptoki's output convention (spec
// 5.2): a length query answers an upper bound (max) without computing; a
// buffer of at least max bytes receives the output directly; a shorter one
// gets the output if it fits, else CKR_BUFFER_TOO_SMALL with the exact
// length, the operation kept alive and the computed bytes kept so that the
// retry returns exactly them.
func deliver(op *operation, out Out, max int, compute func(dst []byte) ([]byte, error)) (int, error) {
	if op.hasPending {
		n := len(op.pending)
		if out.Query {
			return n, nil
		}
		if len(out.Buf) < n {
			return n, fmt.Errorf("token: output of %d bytes: %w", n, ck.CKR_BUFFER_TOO_SMALL)
		}
		copy(out.Buf, op.pending)
		clear(op.pending)
		op.pending, op.hasPending = nil, false
		return n, nil
	}
	if out.Query {
		return max, nil
	}
	var dst []byte
	if len(out.Buf) >= max {
		dst = out.Buf[:0:len(out.Buf)]
	} else {
		dst = make([]byte, 0, max)
	}
	res, err := compute(dst)
	if err != nil {
		return 0, err
	}
	if len(res) == 0 || len(out.Buf) > 0 && &res[0] == &out.Buf[0] {
		return len(res), nil
	}
	if len(res) <= len(out.Buf) {
		copy(out.Buf, res)
		return len(res), nil
	}
	op.pending, op.hasPending = res, true
	return len(res), fmt.Errorf("token: output of %d bytes: %w", len(res), ck.CKR_BUFFER_TOO_SMALL)
}
