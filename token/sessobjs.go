package token

import "gohsm/internal/ck"

// Session objects are kept by handle (Slot.sessObjs, for lookups) and by
// the session that made them (Slot.bySession), so that closing a session
// visits its own objects only: with 100,000 session objects in a slot,
// every C_CloseSession scanned them all (2.6 ms each), and
// C_CloseAllSessions over 10,000 sessions held the slot's lock for 26 s.

// testOnlySessObjVisit is called for every session object a closing
// session visits (tests count them).
var testOnlySessObjVisit = func() {}

// addSessObjLocked records a new session object, whose handle and session
// are set.
func (s *Slot) addSessObjLocked(o *Object) {
	s.sessObjs[o.h] = o
	if s.bySession == nil {
		s.bySession = map[ck.ULong]map[ck.ULong]struct{}{}
	}
	set := s.bySession[o.session]
	if set == nil {
		set = map[ck.ULong]struct{}{}
		s.bySession[o.session] = set
	}
	set[o.h] = struct{}{}
}

// removeSessObjLocked forgets a session object and its parsed key.
func (s *Slot) removeSessObjLocked(h ck.ULong) {
	o, ok := s.sessObjs[h]
	if !ok {
		return
	}
	delete(s.sessObjs, h)
	delete(s.keys, h)
	if set := s.bySession[o.session]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(s.bySession, o.session)
		}
	}
}

// dropSessionObjectsLocked forgets every object the session made.
func (s *Slot) dropSessionObjectsLocked(session ck.ULong) {
	for h := range s.bySession[session] {
		testOnlySessObjVisit()
		delete(s.sessObjs, h)
		delete(s.keys, h)
	}
	delete(s.bySession, session)
}
