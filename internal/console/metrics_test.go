package console_test

import (
	"net/http"
	"testing"

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
