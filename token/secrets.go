package token

// forgetSecretsLocked drops every reference the slot and its sessions keep
// to key material, and clears the bytes it can: C_Logout (logoutLocked)
// and C_Finalize (Module.Close) call it with the slot's write lock held.
//
// References: the parsed keys and their prepared forms (s.keys: AES key
// schedules, HMAC state pools, libcrypto keys), the loaded token objects
// with their opened secret attributes (s.objs), and in each session the
// memory of its last operations (opMem keeps a cipher or signer after the
// operation ended) and the last key it used (fastKey).
//
// Bytes are cleared only when no session is in a call: a session's call
// holds its mutex, and its fast path uses a key without the slot lock, so
// while any session is busy its key may be in use and only the references
// go (the garbage collector frees the rest). A session closed while
// another thread is in a call on it is no longer in s.sessions: closing the
// last session (which logs out) therefore never counts as quiet, and
// C_Finalize looks before it drops the sessions. The opened secret attributes
// of loaded objects are dropped, not cleared: C_GetAttributeValue hands
// the object's own bytes to the C boundary, which copies them out after
// the session's mutex is released. libcrypto keys are left to their
// cleanups (runtime.AddCleanup) whether quiet or not: a call on a closed
// session may still hold one, and freeing it under that call would be a
// use after free. docs/design.md ("Key material in memory") says what Go
// cannot clear.
func (s *Slot) forgetSecretsLocked() {
	var locked []*Session
	// With no session left (the last one was just closed, which logs out)
	// a call may still be running on the closed one: not quiet.
	quiet := len(s.sessions) > 0
	for _, se := range s.sessions {
		if !se.mu.TryLock() {
			quiet = false
			continue
		}
		locked = append(locked, se)
		if se.opMem != nil {
			for k := range se.opMem {
				if se.ops[k] != &se.opMem[k] {
					se.opMem[k] = operation{}
				}
			}
		}
		se.fastKey.ok, se.fastKey.key = false, nil
	}
	if quiet {
		for _, c := range s.keys {
			clearKey(c.key)
		}
	}
	for _, se := range locked {
		se.mu.Unlock()
	}
	clear(s.keys)
	clear(s.objs)
}

// clearKey overwrites what of a parsed key can be overwritten: secret-key
// bytes. RSA and ECDSA keys hold big.Int and field elements, crypto/ecdh
// keeps its own copy, ed25519.PrivateKey is bytes but the same slice may
// back the object's template: those are only dropped.
func clearKey(k any) {
	if b, ok := k.([]byte); ok {
		clear(b)
	}
}

// testOnlyKeyRefs counts the key references a slot holds: cached parsed
// keys, loaded objects, operations kept in session memory and sessions'
// remembered keys.
func (s *Slot) testOnlyKeyRefs() (keys, objs, ops, fast int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.sessions {
		se.mu.Lock()
		if se.opMem != nil {
			for k := range se.opMem {
				op := &se.opMem[k]
				if op.mech != nil || op.cipher != nil || op.signer != nil || op.verifier != nil || op.key != nil || op.aead != nil {
					ops++
				}
			}
		}
		if se.fastKey.key != nil {
			fast++
		}
		se.mu.Unlock()
	}
	return len(s.keys), len(s.objs), ops, fast
}
