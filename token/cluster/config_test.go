package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

func TestConfigSet(t *testing.T) {
	type kv struct{ k, v string }
	for _, tc := range []struct {
		name  string
		keys  []kv
		check func(t *testing.T, c Config)
	}{
		{"hsms", []kv{{"hsms", "3"}}, func(t *testing.T, c Config) {
			assert.True(t, c.On)
			assert.Equal(t, 3, c.HSMs)
		}},
		{"off wins only as itself", []kv{{"hsms", "3"}, {"cluster", "off"}}, func(t *testing.T, c Config) {
			assert.False(t, c.On)
		}},
		{"check", []kv{{"key_availability_check", "false"}}, func(t *testing.T, c Config) {
			assert.False(t, c.KeyAvailabilityCheck)
		}},
		{"delay", []kv{{"replication_delay", "250ms"}}, func(t *testing.T, c Config) {
			assert.Equal(t, 250*time.Millisecond, c.ReplicationDelay)
		}},
		{"throttle on follows hsm_type", []kv{{"throttle", "on"}}, func(t *testing.T, c Config) {
			assert.Equal(t, "hsm2m", c.Throttle)
			assert.Equal(t, 1500.0, c.Budgets[ClassECSign])
			assert.Equal(t, 1000.0, c.Budgets[ClassRSASign])
			assert.Equal(t, 10.0, c.Budgets[ClassCertRead])
			assert.Equal(t, 1.0, c.Budgets[ClassCertWrite])
			assert.Zero(t, c.Budgets[ClassSymmetric])
		}},
		{"hsm1 preset", []kv{{"throttle", "hsm1"}}, func(t *testing.T, c Config) {
			assert.Equal(t, 250.0, c.Budgets[ClassECSign])
			assert.Zero(t, c.Budgets[ClassCertRead])
		}},
		{"class key wins over a later preset", []kv{{"throttle.ec-sign", "7"}, {"throttle", "hsm1"}}, func(t *testing.T, c Config) {
			assert.Equal(t, 7.0, c.Budgets[ClassECSign])
			assert.Equal(t, 1000.0, c.Budgets[ClassRSASign])
		}},
		{"class key alone turns throttling on", []kv{{"throttle.symmetric", "200.5"}}, func(t *testing.T, c Config) {
			assert.Equal(t, 200.5, c.Budgets[ClassSymmetric])
			assert.True(t, c.On)
		}},
		{"retry", []kv{{"retry_mode", "off"}}, func(t *testing.T, c Config) {
			assert.Equal(t, RetryOff, c.Retry)
		}},
		{"latency preset", []kv{{"latency", "cloudhsm"}}, func(t *testing.T, c Config) {
			assert.Equal(t, &Dist{Kind: Normal, A: 1300 * time.Microsecond, B: 100 * time.Microsecond}, c.Latency[ClassRSASign])
			// hsm2m P-256: 1/1500 s + the round trip.
			assert.Equal(t, networkRTT+time.Second/1500, c.Latency[ClassECSign].A)
			assert.Equal(t, networkRTT, c.Latency[ClassCertRead].A)
			assert.Nil(t, c.Latency[ClassNone])
		}},
		{"latency all and a class", []kv{{"latency.ec-sign", "1ms..3ms"}, {"latency.all", "2ms"}}, func(t *testing.T, c Config) {
			assert.Equal(t, &Dist{Kind: Uniform, A: time.Millisecond, B: 3 * time.Millisecond}, c.Latency[ClassECSign])
			assert.Equal(t, &Dist{Kind: Fixed, A: 2 * time.Millisecond}, c.Latency[ClassRSASign])
			assert.Nil(t, c.Latency[ClassNone])
		}},
		{"degraded", []kv{{"degraded_latency", "5ms"}}, func(t *testing.T, c Config) {
			assert.Equal(t, 5*time.Millisecond, c.DegradedLatency)
		}},
		{"plan and seed", []kv{{"fault_plan", "/x/p.json"}, {"fault_seed", "42"}}, func(t *testing.T, c Config) {
			assert.Equal(t, "/x/p.json", c.FaultPlan)
			assert.Equal(t, uint64(42), c.Seed)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig("standard")
			for _, k := range tc.keys {
				require.NoError(t, c.Set(k.k, k.v, "hsm2m"))
			}
			tc.check(t, c)
		})
	}
}

func TestConfigSetErrors(t *testing.T) {
	for _, tc := range []struct{ k, v, msg string }{
		{"hsms", "0", "hsms = 0: want 1 to 32"},
		{"hsms", "33", "want 1 to 32"},
		{"hsms", "two", "want 1 to 32"},
		{"cluster", "yes", "want on or off"},
		{"key_availability_check", "1", "want true or false"},
		{"replication_delay", "5", "want a duration"},
		{"replication_delay", "11m", "0s to 10m"},
		{"replication_delay", "-1s", "0s to 10m"},
		{"throttle", "fast", "want off, on, hsm1 or hsm2m"},
		{"throttle.rsa", "5", "unknown class"},
		{"throttle.none", "5", "unknown class"},
		{"throttle.rsa-sign", "-1", "from 0"},
		{"throttle.rsa-sign", "NaN", "from 0"},
		{"retry_mode", "adaptive", "standard or off"},
		{"latency", "on", "off or cloudhsm"},
		{"latency.foo", "1ms", "unknown class"},
		{"latency.all", "fast", "not a duration"},
		{"degraded_latency", "1h", "0s to 10s"},
		{"fault_plan", "rel/p.json", "absolute path"},
		{"fault_seed", "-3", "unsigned integer"},
		{"colour", "blue", "unknown key"},
	} {
		c := DefaultConfig("cloudhsm")
		err := c.Set(tc.k, tc.v, "hsm1")
		if assert.Error(t, err, "%s = %s", tc.k, tc.v) {
			assert.Contains(t, err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "cluster: "), err.Error())
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig("cloudhsm")
	assert.True(t, c.On)
	assert.Equal(t, 2, c.HSMs)
	assert.True(t, c.KeyAvailabilityCheck)
	assert.Equal(t, [NumClasses]float64{}, c.Budgets)
	s := DefaultConfig("standard")
	assert.False(t, s.On)
	assert.Equal(t, 1, s.HSMs)
	assert.False(t, s.KeyAvailabilityCheck)
}

func TestParseDist(t *testing.T) {
	for in, want := range map[string]Dist{
		"2ms":               {Kind: Fixed, A: 2 * time.Millisecond},
		"0s":                {Kind: Fixed},
		"1ms..3ms":          {Kind: Uniform, A: time.Millisecond, B: 3 * time.Millisecond},
		"normal(2ms,500us)": {Kind: Normal, A: 2 * time.Millisecond, B: 500 * time.Microsecond},
		" normal(2ms, 0s) ": {Kind: Normal, A: 2 * time.Millisecond},
	} {
		d, err := ParseDist(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, *d, in)
			back, err := ParseDist(d.String())
			require.NoError(t, err)
			assert.Equal(t, d, back)
		}
	}
	for _, in := range []string{"", "2", "fast", "3ms..1ms", "normal(2ms)", "normal(2ms,1ms", "-1ms", "1ms..", "11s", "normal(x,1ms)"} {
		_, err := ParseDist(in)
		assert.Error(t, err, in)
	}
}

// A draw stays within the distribution's bounds and is a pure function of
// its inputs.
func TestDistDraw(t *testing.T) {
	u := &Dist{Kind: Uniform, A: time.Millisecond, B: 3 * time.Millisecond}
	nd := &Dist{Kind: Normal, A: 2 * time.Millisecond, B: 500 * time.Microsecond}
	var sumU, sumN time.Duration
	const n = 20000
	for i := range uint64(n) {
		a, b := draw(7, 1, 2*i), draw(7, 1, 2*i+1)
		assert.Equal(t, a, draw(7, 1, 2*i))
		v := u.draw(a, b)
		require.True(t, v >= u.A && v <= u.B, v)
		sumU += v
		w := nd.draw(a, b)
		require.True(t, w >= 0)
		sumN += w
	}
	assert.InDelta(t, float64(2*time.Millisecond), float64(sumU/n), float64(50*time.Microsecond))
	assert.InDelta(t, float64(2*time.Millisecond), float64(sumN/n), float64(50*time.Microsecond))
	assert.NotEqual(t, draw(7, 1, 0), draw(8, 1, 0))
	assert.NotEqual(t, draw(7, 1, 0), draw(7, 2, 0))
	// Truncated at 0.
	assert.Equal(t, time.Duration(0), (&Dist{Kind: Normal, A: 0, B: time.Millisecond}).draw(0.5, 0.5))
}

func TestParsePlan(t *testing.T) {
	good := `{"seed":7,"steps":[
		{"at":"2s","hsm":1,"state":"down"},
		{"at":"0s","fail":"C_Sign","count":3,"rv":"CKR_DEVICE_ERROR"},
		{"at":"1s","for":"5s","fail":"C_Encrypt","probability":0.2,"rv":"CKR_DEVICE_ERROR"},
		{"at":"1s","for":"2s","latency":"normal(5ms,1ms)","class":"ec-sign"},
		{"at":"3s","for":"500ms","store":"down"}]}`
	p, err := ParsePlan([]byte(good))
	require.NoError(t, err)
	assert.Equal(t, uint64(7), p.Seed)
	require.Len(t, p.Steps, 5)
	assert.Equal(t, Duration(2*time.Second), p.Steps[0].At)
	assert.Equal(t, 1, *p.Steps[0].HSM)
	assert.Equal(t, "at 0s: fail C_Sign with CKR_DEVICE_ERROR, 3 calls", p.Steps[1].String())
	assert.Equal(t, "at 3s for 500ms: store down", p.Steps[4].String())
	assert.NoError(t, p.checkHSMs(2))
	assert.ErrorContains(t, p.checkHSMs(1), "step 0: hsm 1: the cluster has HSMs 0 to 0")

	for _, tc := range []struct{ plan, msg string }{
		{`{"steps":[{"at":"1s","hsm":0,"state":"down","extra":1}]}`, "unknown field"},
		{`{"steps":[{"at":"1s"}]}`, "exactly one of"},
		{`{"steps":[{"at":"1s","hsm":0,"state":"down","store":"down","for":"1s"}]}`, "exactly one of"},
		{`{"steps":[{"at":"1s","hsm":0,"state":"down","count":2}]}`, "exactly one of"},
		{`{"steps":[{"at":"1s","hsm":0,"state":"sideways"}]}`, "want up, down or degraded"},
		{`{"steps":[{"at":"1s","hsm":40,"state":"down"}]}`, "hsm: want"},
		{`{"steps":[{"at":"1s","state":"down"}]}`, "hsm: want"},
		{`{"steps":[{"at":"-1s","hsm":0,"state":"down"}]}`, "at: want"},
		{`{"steps":[{"at":"1s","for":"-2s","store":"down"}]}`, "for: want"},
		{`{"steps":[{"at":1,"hsm":0,"state":"down"}]}`, "duration string"},
		{`{"steps":[{"at":"soon","hsm":0,"state":"down"}]}`, "not a duration"},
		{`{"steps":[{"fail":"C_Frobnicate","rv":"CKR_DEVICE_ERROR"}]}`, "not a function"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_NOPE"}]}`, "want a CKR_ name"},
		{`{"steps":[{"fail":"C_Sign"}]}`, "want a CKR_ name"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_OK"}]}`, "other than CKR_OK"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_DEVICE_ERROR","count":-1}]}`, "count"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_DEVICE_ERROR","probability":1.5}]}`, "probability"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_DEVICE_ERROR","probability":-0.5}]}`, "probability"},
		{`{"steps":[{"fail":"C_Sign","rv":"CKR_DEVICE_ERROR","count":2,"probability":0.5}]}`, "not both"},
		{`{"steps":[{"latency":"fast"}]}`, "not a duration"},
		{`{"steps":[{"latency":"1ms","class":"crypto"}]}`, "class"},
		{`{"steps":[{"store":"up","for":"1s"}]}`, "want down"},
		{`{"steps":[{"store":"down"}]}`, "longer than 0s"},
		{`{"steps":[]} {}`, "data after"},
		// Names are matched exactly (internal/strictjson): encoding/json
		// alone loaded these as an empty plan and as hsm 0 going down.
		{`{"Steps":[{"at":"1s","hsm":0,"state":"down"}]}`, `unknown field "Steps" (names are matched exactly)`},
		{`{"steps":[{"at":"1s","HSM":0,"state":"down"}]}`, `unknown field "HSM" in steps[0]`},
		{`{"steps":[`, "unexpected EOF"},
		{`[1,2]`, "cannot unmarshal"},
		{`{"steps":[` + strings.Repeat(`{"at":"1s","hsm":0,"state":"up"},`, 64) + `{"at":"1s","hsm":0,"state":"up"}]}`, "65 steps"},
		{`{"seed":1,"steps":[]}` + strings.Repeat(" ", planCap), "more than 16384 bytes, the most is 16384"},
	} {
		_, err := ParsePlan([]byte(tc.plan))
		if assert.Error(t, err, tc.plan) {
			assert.Contains(t, err.Error(), tc.msg, tc.plan)
			assert.True(t, strings.HasPrefix(err.Error(), "cluster: plan: "), err.Error())
		}
	}
}

func TestRVByNameFeedsErrors(t *testing.T) {
	var rv ck.RV
	assert.True(t, errors.As(ErrNoHSM, &rv))
	assert.Equal(t, ck.CKR_DEVICE_ERROR, rv)
}
