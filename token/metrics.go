package token

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"gohsm/internal/ck"
	"gohsm/token/cluster"
	"gohsm/token/metrics"
)

// The slot's operation counters (token/metrics, issue 18 D5,
// docs/metrics.md): every slot, with or without a cluster, counts its
// calls by the cluster's operation classes (opClass, useClass) while its
// metrics are on. When they are off a call pays s.mt.Begin: one atomic
// load (Slot.mt nil, or its lease word 0).
//
// Counted: single-part calls and Finals of encrypt, decrypt, sign and
// verify (digests reach no HSM: class none, not counted), key and key-pair
// generation, random, login, object management (create, copy, destroy,
// set attributes, find), and wrap, unwrap and derive (by the mechanism's
// key family, as the cluster admits them). A length query and a call answered
// CKR_BUFFER_TOO_SMALL compute nothing the caller gets: not counted (the
// retry is). Updates are not counted.

// openMetrics maps the slot's metrics file and claims this process's
// region, as the config's `metrics` says. It never fails the slot: a
// file that cannot be opened means no metrics, said in the log.
func (m *Module) openMetrics(s *Slot) {
	mode := s.cfg.Metrics
	if mode == metrics.Off {
		return
	}
	perm := uint32(0o600)
	if m.storeOpts.Group != nil {
		perm = 0o660
	}
	log := func(msg string, args ...any) {
		m.log.Warn(msg, append([]any{"slot", s.cfg.ID}, args...)...)
	}
	p, err := metrics.Open(s.cfg.Dir, perm, mode, log)
	if err != nil {
		log("gohsm: metrics file cannot be opened: this slot publishes no metrics", "err", err)
		return
	}
	if g := m.storeOpts.Group; g != nil {
		// As cluster.state: the group's workers map it too. Only when
		// it is not the group's yet: a worker that does not own the file
		// cannot chown it, and need not.
		path := filepath.Join(s.cfg.Dir, metricsFile)
		if fi, err := os.Stat(path); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != *g {
				if err := os.Chown(path, -1, *g); err != nil {
					log("gohsm: metrics file: cannot give it to token_group", "err", err)
				}
			}
		}
	}
	s.mt = p
}

// metricsFile is the metrics file's name in the slot's directory.
const metricsFile = "metrics"

// MetricsMode is the slot's `metrics` setting.
func (s *Slot) MetricsMode() metrics.Mode { return s.cfg.Metrics }

// begin starts measuring a management call on session h's slot: s is
// nil when the slot's metrics are off (or the session does not exist).
func (m *Module) begin(h ck.ULong) (*Slot, int64) {
	se, err := m.session(h)
	if err != nil {
		return nil, 0
	}
	t0, ok := se.slot.mt.Begin()
	if !ok {
		return nil, 0
	}
	return se.slot, t0
}

// mechClass is the class of a one-call use (wrap as encrypt, unwrap and
// derive as decrypt: the kinds admitKey's callers give useClass) of a key
// of mechanism t's first key type, which is the used key's family
// (keyObjectLocked refuses another); manage for a mechanism the slot does
// not know (the call fails, and counts as failed).
func (s *Slot) mechClass(kind opKind, t ck.MechanismType) cluster.Class {
	mm, _, ok := s.prof.Mechanisms.Lookup(t)
	if !ok || len(mm.KeyTypes) == 0 {
		return cluster.ClassManage
	}
	if c := useClass(kind, mm.KeyTypes[0]); c != cluster.ClassNone {
		return c
	}
	return cluster.ClassManage
}

// record counts a call of class cls started at t0 that returned *errp.
func (s *Slot) record(cls cluster.Class, t0 int64, errp *error) {
	err := *errp
	if err != nil && errors.Is(err, ck.CKR_BUFFER_TOO_SMALL) {
		return
	}
	throttled := err != nil && (errors.Is(err, cluster.ErrThrottled) || errors.Is(err, cluster.ErrCertThrottled))
	s.mt.Record(cls, t0, err, throttled)
}
