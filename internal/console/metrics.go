package console

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"gohsm/internal/ck"
	"gohsm/token/metrics"
)

// The metrics of D5: while a web session is open on a slot, a sampler
// renews the slot's watch lease (library processes in mode auto publish
// while it runs) and keeps a ring of the last ringSize one-second rates.

const (
	ringSize       = 600
	sampleInterval = time.Second
	leaseAhead     = 5 * time.Second
)

// point is one sample of GET /metrics.
type point struct {
	T       int64                        `json:"t"`
	Classes map[string]metrics.ClassRate `json:"classes"`
}

type sampler struct {
	r    *metrics.Reader
	prev metrics.Sample

	mu   sync.Mutex
	ring []point // oldest first, at most ringSize
}

// samplers are the watched slots' samplers; sampleMu guards it.
type samplers struct {
	mu sync.Mutex
	m  map[ck.ULong]*sampler
}

// watch runs every second: it starts a sampler on each slot with a live
// session, renews the leases, takes a sample, and stops the samplers of
// slots no session uses any more (their lease then runs out in 5 s).
func (s *Server) watch() {
	live := s.sessions.slots()
	s.samplers.mu.Lock()
	defer s.samplers.mu.Unlock()
	if s.samplers.m == nil {
		s.samplers.m = map[ck.ULong]*sampler{}
	}
	for id := range s.samplers.m {
		if !live[id] {
			s.samplers.m[id].r.Close()
			delete(s.samplers.m, id)
		}
	}
	now := time.Now() // the lease is the library processes' clock, never a test's
	for id := range live {
		sm := s.samplers.m[id]
		if sm == nil {
			r, err := s.openReader(id)
			if err != nil {
				s.log.Warn("console: metrics", "slot", id, "err", err)
			}
			if r == nil {
				continue
			}
			r.Watch(now.Add(leaseAhead))
			sm = &sampler{r: r, prev: r.Sample()}
			s.samplers.m[id] = sm
			continue
		}
		sm.r.Watch(now.Add(leaseAhead))
		cur := sm.r.Sample()
		rates := metrics.RatesOf(sm.prev, cur)
		sm.prev = cur
		sm.mu.Lock()
		if len(sm.ring) == ringSize {
			copy(sm.ring, sm.ring[1:])
			sm.ring = sm.ring[:ringSize-1]
		}
		sm.ring = append(sm.ring, point{T: cur.Time.UnixMilli(), Classes: rates.Classes})
		sm.mu.Unlock()
	}
}

// openReader maps the metrics file of slot id's directory; nil for a
// slot configured with metrics = off, whose processes never publish.
func (s *Server) openReader(id ck.ULong) (*metrics.Reader, error) {
	s.toolMu.Lock()
	sl, err := s.tool.Slot(id)
	s.toolMu.Unlock()
	if err != nil || sl.Config().Metrics == metrics.Off {
		return nil, err
	}
	return metrics.OpenReader(sl.Config().Dir)
}

func (s *Server) closeSamplers() {
	s.samplers.mu.Lock()
	defer s.samplers.mu.Unlock()
	for id, sm := range s.samplers.m {
		sm.r.Close()
		delete(s.samplers.m, id)
	}
}

type metricsBody struct {
	Enabled    bool     `json:"enabled"`
	IntervalMS int      `json:"interval_ms"`
	Classes    []string `json:"classes"`
	Samples    []point  `json:"samples"`
}

// getMetrics answers the samples of the session's slot after since
// (unix ms; all that the ring holds without it).
func (s *Server) getMetrics(c *call) (int, any, error) {
	var since int64
	if q := c.r.URL.Query().Get("since"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, badRequest("since %q: want a time in unix milliseconds", q)
		}
		since = n
	}
	body := metricsBody{IntervalMS: int(sampleInterval / time.Millisecond), Classes: metrics.ClassNames(), Samples: []point{}}
	s.samplers.mu.Lock()
	sm := s.samplers.m[c.ws.slot]
	s.samplers.mu.Unlock()
	if sm != nil {
		body.Enabled = true
		sm.mu.Lock()
		for _, p := range sm.ring {
			if p.T > since {
				body.Samples = append(body.Samples, p)
			}
		}
		sm.mu.Unlock()
	}
	return http.StatusOK, body, nil
}
