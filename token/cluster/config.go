package cluster

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits on configuration values.
const (
	maxReplicationDelay = 10 * time.Minute
	maxLatency          = 10 * time.Second // one draw; a larger value is a typo, not a test
	maxBudget           = 1e9              // ops/s per HSM
)

// throttlePresets are per-HSM ops/s by hsm_type, from AWS's published
// figures (UG:performance: a 2-HSM cluster does 2,000 RSA-2048 signs/s,
// 500 (hsm1) / 3,000 (hsm2m) P-256 signs/s, so ~1,000 and 250 / 1,500 per
// HSM; UG:pkcs11-certificate-storage-limits: 10 certificate reads and 1
// write per second per HSM on hsm2m). AWS publishes no other figure, so
// every other class is unlimited.
var throttlePresets = map[string][NumClasses]float64{
	"hsm1":  {ClassRSASign: 1000, ClassECSign: 250},
	"hsm2m": {ClassRSASign: 1000, ClassECSign: 1500, ClassCertRead: 10, ClassCertWrite: 1},
}

// networkRTT is the round trip we add to every HSM call under
// `latency = cloudhsm`. Our choice: same-AZ EC2-to-ENI round trips are
// commonly cited between 0.1 and 0.5 ms; AWS publishes no figure. The
// deviation is a third of it.
const networkRTT = 300 * time.Microsecond

// latencyPreset is `latency = cloudhsm` for an hsm_type: per class, a
// normal distribution with mean networkRTT plus the HSM's service time
// where AWS publishes a rate (service time = 1 / per-HSM rate of
// throttlePresets: RSA-2048 sign 1 ms on both types, P-256 sign 4 ms on
// hsm1 and 0.667 ms on hsm2m), networkRTT alone for the other classes.
// The certificate-storage rates are quotas, not service times: they add
// nothing. ClassNone is local to the client and never delayed.
func latencyPreset(hsmType string) [NumClasses]*Dist {
	var out [NumClasses]*Dist
	rates := throttlePresets[presetFor(hsmType)]
	for cl := ClassNone + 1; cl < NumClasses; cl++ {
		mean := networkRTT
		if r := rates[cl]; r > 0 && cl != ClassCertRead && cl != ClassCertWrite {
			mean += time.Duration(float64(time.Second) / r)
		}
		out[cl] = &Dist{Kind: Normal, A: mean, B: networkRTT / 3}
	}
	return out
}

// presetFor is the preset `throttle = on` and `latency = cloudhsm` follow:
// the slot's hsm_type, hsm1 when it has none (a standard slot).
func presetFor(hsmType string) string {
	if hsmType == "hsm2m" {
		return "hsm2m"
	}
	return "hsm1"
}

// Set applies one slot key (one of Keys) to c; hsmType is the slot's
// hsm_type (the throttle preset "on" and the latency preset "cloudhsm"
// follow it). Any key but "cluster = off" turns the cluster on. A
// throttle.<class> or latency.<class> key wins over its preset whatever
// the order of the keys; latency.<class> wins over latency.all.
func (c *Config) Set(key, value, hsmType string) error {
	value = strings.TrimSpace(value)
	bad := func(want string) error { return fmt.Errorf("cluster: %s = %s: want %s", key, value, want) }
	switch {
	case key == "cluster":
		switch value {
		case "on":
			c.On = true
		case "off":
			c.On = false
		default:
			return bad("on or off")
		}
		return nil
	case key == "hsms":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxHSMs {
			return bad(fmt.Sprintf("1 to %d", MaxHSMs))
		}
		c.HSMs = n
	case key == "key_availability_check":
		b, err := strconv.ParseBool(value)
		if err != nil || (value != "true" && value != "false") {
			return bad("true or false")
		}
		c.KeyAvailabilityCheck = b
	case key == "replication_delay":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || d > maxReplicationDelay {
			return bad("a duration from 0s to 10m")
		}
		c.ReplicationDelay = d
	case key == "throttle":
		switch value {
		case "off", "hsm1", "hsm2m":
			c.Throttle = value
		case "on":
			c.Throttle = presetFor(hsmType)
		default:
			return bad("off, on, hsm1 or hsm2m")
		}
	case strings.HasPrefix(key, "throttle."):
		cl, ok := ParseClass(strings.TrimPrefix(key, "throttle."))
		if !ok {
			return fmt.Errorf("cluster: %s: unknown class (want one of %s)", key, classList())
		}
		r, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(r) || r < 0 || r > maxBudget {
			return bad("ops/s per HSM from 0 (unlimited) to 1e9")
		}
		c.budgetSet[cl] = true
		c.budgetOver[cl] = r
	case key == "retry_mode":
		switch value {
		case "standard":
			c.Retry = RetryStandard
		case "off":
			c.Retry = RetryOff
		default:
			return bad("standard or off")
		}
	case key == "latency":
		switch value {
		case "off", "cloudhsm":
			c.latencyPreset = value
		default:
			return bad("off or cloudhsm")
		}
	case strings.HasPrefix(key, "latency."):
		name := strings.TrimPrefix(key, "latency.")
		d, err := ParseDist(value)
		if err != nil {
			return fmt.Errorf("cluster: %s: %w", key, err)
		}
		if name == "all" {
			c.latencyAll = d
			break
		}
		cl, ok := ParseClass(name)
		if !ok {
			return fmt.Errorf("cluster: %s: unknown class (want all or one of %s)", key, classList())
		}
		c.latencyOver[cl] = d
	case key == "degraded_latency":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 || d > maxLatency {
			return bad("a duration from 0s to 10s")
		}
		c.DegradedLatency = d
	case key == "fault_plan":
		if !strings.HasPrefix(value, "/") {
			return bad("an absolute path")
		}
		c.FaultPlan = value
	case key == "fault_seed":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return bad("an unsigned integer")
		}
		c.Seed = n
	default:
		return fmt.Errorf("cluster: unknown key %q", key)
	}
	c.On = true
	c.resolve(hsmType)
	return nil
}

// resolve recomputes Budgets and Latency from the presets and the
// per-class keys.
func (c *Config) resolve(hsmType string) {
	c.Budgets = throttlePresets[c.Throttle] // "off": all zero
	for cl, set := range c.budgetSet {
		if set {
			c.Budgets[cl] = c.budgetOver[cl]
		}
	}
	c.Latency = [NumClasses]*Dist{}
	if c.latencyPreset == "cloudhsm" {
		c.Latency = latencyPreset(hsmType)
	}
	for cl := ClassNone + 1; cl < NumClasses; cl++ {
		if c.latencyAll != nil {
			c.Latency[cl] = c.latencyAll
		}
		if c.latencyOver[cl] != nil {
			c.Latency[cl] = c.latencyOver[cl]
		}
	}
}

func classList() string {
	return strings.Join(classNames[1:], ", ")
}

// ParseDist reads "2ms", "1ms..3ms" or "normal(2ms,500us)".
func ParseDist(s string) (*Dist, error) {
	s = strings.TrimSpace(s)
	dur := func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 || d > maxLatency {
			return 0, fmt.Errorf("cluster: latency %q: %q is not a duration from 0s to 10s", s, strings.TrimSpace(v))
		}
		return d, nil
	}
	if inner, ok := strings.CutPrefix(s, "normal("); ok {
		inner, ok = strings.CutSuffix(inner, ")")
		mean, dev, ok2 := strings.Cut(inner, ",")
		if !ok || !ok2 {
			return nil, fmt.Errorf("cluster: latency %q: want normal(MEAN,DEVIATION)", s)
		}
		a, err := dur(mean)
		if err != nil {
			return nil, err
		}
		b, err := dur(dev)
		if err != nil {
			return nil, err
		}
		return &Dist{Kind: Normal, A: a, B: b}, nil
	}
	if lo, hi, ok := strings.Cut(s, ".."); ok {
		a, err := dur(lo)
		if err != nil {
			return nil, err
		}
		b, err := dur(hi)
		if err != nil {
			return nil, err
		}
		if b < a {
			return nil, fmt.Errorf("cluster: latency %q: the upper bound is below the lower", s)
		}
		return &Dist{Kind: Uniform, A: a, B: b}, nil
	}
	a, err := dur(s)
	if err != nil {
		return nil, err
	}
	return &Dist{Kind: Fixed, A: a}, nil
}

// String writes d the way ParseDist reads it.
func (d *Dist) String() string {
	switch d.Kind {
	case Uniform:
		return d.A.String() + ".." + d.B.String()
	case Normal:
		return "normal(" + d.A.String() + "," + d.B.String() + ")"
	}
	return d.A.String()
}

// draw is d's value for the uniform numbers u1, u2 in [0, 1).
func (d *Dist) draw(u1, u2 float64) time.Duration {
	switch d.Kind {
	case Uniform:
		return d.A + time.Duration(u1*float64(d.B-d.A))
	case Normal:
		// Box-Muller; 1-u1 is in (0, 1], so the log is finite.
		z := math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
		v := float64(d.A) + z*float64(d.B)
		if v < 0 {
			return 0
		}
		if v > float64(maxLatency) {
			return maxLatency
		}
		return time.Duration(v)
	}
	return d.A
}
