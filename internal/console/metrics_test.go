package console_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestAPIMetricsShape: GET /metrics answers D5's shape (validated against the
// document by the harness) to either role; a bad since is 400.
func TestAPIMetricsShape(t *testing.T) {
	e := newEnv(t)
	e.client().do("GET", "/api/v1/metrics", nil).want(t, http.StatusUnauthorized, "")
	for _, c := range []*client{e.alice(), e.officer()} {
		var m struct {
			Enabled  *bool    `json:"enabled"`
			Interval int      `json:"interval_ms"`
			Classes  []string `json:"classes"`
			Samples  []struct {
				T       int64                         `json:"t"`
				Classes map[string]map[string]float64 `json:"classes"`
			} `json:"samples"`
		}
		c.do("GET", "/api/v1/metrics", nil).ok(t, http.StatusOK, &m)
		assert.NotNil(t, m.Enabled)
		assert.Equal(t, 1000, m.Interval)
		for _, s := range m.Samples {
			assert.Positive(t, s.T)
			for class, v := range s.Classes {
				assert.Contains(t, m.Classes, class)
				for _, f := range []string{"ops", "failed", "throttled", "p50_us", "p95_us", "p99_us"} {
					assert.Contains(t, v, f, "sample %d class %s", s.T, class)
				}
			}
		}
		c.do("GET", "/api/v1/metrics?since=0", nil).ok(t, http.StatusOK, nil)
		for _, q := range []string{"abc", "-1", "1e99"} {
			c.raw("GET", "/api/v1/metrics?since="+q, nil, nil).want(t, http.StatusBadRequest, "bad_request")
		}
	}
}

// TestAPIMetricsCount: work done through the token while a console
// watches shows up in its samples: alice's key generations are keygen
// operations per second in some sample (rates over 1 s intervals). A slot
// with metrics = off is not sampled: enabled false, no samples.
func TestAPIMetricsCount(t *testing.T) {
	e := newEnvOpts(t, envOpts{extra: "metrics = off\n"}) // in [slot 1]
	off := e.alice(clusterID)
	a := e.alice()
	deadline := time.Now().Add(8 * time.Second)
	type body struct {
		Enabled bool `json:"enabled"`
		Samples []struct {
			T       int64                         `json:"t"`
			Classes map[string]map[string]float64 `json:"classes"`
		} `json:"samples"`
	}
	var seen float64
	for time.Now().Before(deadline) && seen == 0 {
		for i := 0; i < 3; i++ {
			a.gen(t, map[string]any{"type": "aes", "label": "m", "bits": 128})
		}
		time.Sleep(500 * time.Millisecond)
		var m body
		a.do("GET", "/api/v1/metrics", nil).ok(t, http.StatusOK, &m)
		for _, s := range m.Samples {
			if c, ok := s.Classes["keygen"]; ok && c["ops"] > seen {
				seen = c["ops"]
			}
		}
	}
	assert.Positive(t, seen, "no keygen rate in 8 s of samples")

	var m struct {
		Enabled bool  `json:"enabled"`
		Samples []any `json:"samples"`
	}
	off.do("GET", "/api/v1/metrics", nil).ok(t, http.StatusOK, &m)
	assert.False(t, m.Enabled)
	assert.Empty(t, m.Samples)
	a.do("GET", "/api/v1/metrics?since=99999999999999", nil).ok(t, http.StatusOK, &m)
	assert.True(t, m.Enabled)
	assert.Empty(t, m.Samples, "since the far future: nothing")
}
