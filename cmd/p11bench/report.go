package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

const (
	statusOK          = "ok"
	statusUnsupported = "unsupported"
	statusError       = "error"
	// statusSkipped: the module does not run the operation (-module-ops).
	statusSkipped = "skipped"

	verdictPass = "PASS"
	verdictMiss = "MISS"
	verdictNA   = "n/a"  // a side could not run
	verdictInfo = "info" // no target

	scalingTarget = 1.8 // 2 sessions / 1 session on sign operations
)

type result struct {
	Op        string  `json:"op"`
	Module    string  `json:"module"`
	Sessions  int     `json:"sessions"`
	Status    string  `json:"status"`
	Reason    string  `json:"reason,omitempty"`
	Ops       uint64  `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	// RoundsOpsPerSec is every round's ops/s, in the order measured (the
	// fields above are the median round's).
	RoundsOpsPerSec []float64 `json:"rounds_ops_per_sec,omitempty"`
	err             error
}

type ratioRow struct {
	// Pair is "A/B": module A's ops/s over module B's (the first pair is
	// the first module over the second; -pair adds others).
	Pair     string  `json:"pair"`
	Op       string  `json:"op"`
	Sessions int     `json:"sessions"`
	Ratio    float64 `json:"ratio"`
	Target   float64 `json:"target,omitempty"`
	Verdict  string  `json:"verdict"`
}

type scalingRow struct {
	Op       string  `json:"op"`
	Module   string  `json:"module"`
	Sessions int     `json:"sessions"`
	Base     float64 `json:"ops_per_sec_1"`
	Scaled   float64 `json:"ops_per_sec_n"`
	Scaling  float64 `json:"scaling"`
	// Rounds are the per-round scalings Scaling is the median of, and
	// IntervalLo-IntervalHi a confidence interval for that median (at
	// least intervalConf; zero when too few rounds give one).
	Rounds     []float64 `json:"scaling_rounds,omitempty"`
	IntervalLo float64   `json:"interval_lo,omitempty"`
	IntervalHi float64   `json:"interval_hi,omitempty"`
	Target     float64   `json:"target,omitempty"`
	Verdict    string    `json:"verdict"`
}

type goRow struct {
	Op              string  `json:"op"`
	What            string  `json:"what"`
	OpsPerSec       float64 `json:"ops_per_sec"`
	P50us           float64 `json:"p50_us"`
	ModuleOp        string  `json:"module_op"`
	Module          string  `json:"module,omitempty"`
	ModuleOpsPerSec float64 `json:"module_ops_per_sec,omitempty"`
	// Overhead is module time per op / Go time per op - 1: the median over
	// rounds of Go's rate over the module's in the same round.
	Overhead float64 `json:"overhead"`
	Target   float64 `json:"target,omitempty"`
	Verdict  string  `json:"verdict"`
	// RoundsOpsPerSec is Go's rate in every round of the module operation.
	RoundsOpsPerSec []float64 `json:"rounds_ops_per_sec,omitempty"`
}

type moduleReport struct {
	Name             string  `json:"name"`
	Path             string  `json:"path"`
	Info             string  `json:"info"`
	KeySetupSeconds  float64 `json:"key_setup_seconds"`
	FindSetup        string  `json:"find_setup"`
	FindSetupSeconds float64 `json:"find_setup_seconds"`
	SameFindToken    bool    `json:"same_find_token"`
}

type report struct {
	Command  string `json:"command"`
	Duration string `json:"duration_per_op"`
	Rounds   int    `json:"rounds"`
	// ScalingRounds is the rounds of the operations with a scaling target.
	ScalingRounds int            `json:"scaling_rounds"`
	Slices        int            `json:"slices"`
	Sessions      []int          `json:"sessions"`
	Objects       int            `json:"find_objects"`
	Modules       []moduleReport `json:"modules"`
	Results       []result       `json:"results"`
	Ratios        []ratioRow     `json:"ratios,omitempty"`
	Scaling       []scalingRow   `json:"scaling,omitempty"`
	GoBaseline    []goRow        `json:"go_baseline,omitempty"`
	// OpenSSLBaseline is libcrypto's own signing from C threads.
	OpenSSLBaseline []osslRow `json:"openssl_baseline,omitempty"`
	Pass            int       `json:"pass"`
	Miss            int       `json:"miss"`
}

func (r *report) find(op, module string, k int) *result {
	for i := range r.Results {
		x := &r.Results[i]
		if x.Op == op && x.Module == module && x.Sessions == k {
			return x
		}
	}
	return nil
}

func opByName(name string) *opDef {
	for _, op := range opDefs {
		if op.name == name {
			return op
		}
	}
	return nil
}

func judge(v, target float64) string {
	switch {
	case target == 0:
		return verdictInfo
	case v >= target:
		return verdictPass
	}
	return verdictMiss
}

// pairedRatio is a's ops/s over b's: the median over rounds of the ratio
// within one round (measured seconds apart), so that a slow change in what
// the machine gives (another tenant's load, say) moves both sides of each
// ratio alike instead of landing between the two medians. Without
// per-round rates, the ratio of the medians.
func pairedRatio(a, b *result) float64 {
	n := len(a.RoundsOpsPerSec)
	if n == 0 || n != len(b.RoundsOpsPerSec) {
		return a.OpsPerSec / b.OpsPerSec
	}
	return medianRatio(a.RoundsOpsPerSec, b.RoundsOpsPerSec)
}

// medianRatio is the median of a[i]/b[i] (the upper one of an even count,
// as for rounds), over the i where b[i] > 0.
func medianRatio(a, b []float64) float64 { return medianOf(roundRatios(a, b)) }

// roundRatios are a[i]/b[i], over the i where b[i] > 0.
func roundRatios(a, b []float64) []float64 {
	var rs []float64
	for i := range a {
		if i < len(b) && b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return rs
}

// intervalConf is the least coverage of the interval given for a median
// scaling.
const intervalConf = 0.90

// medianInterval is a confidence interval for the median of what v's
// values are drawn from, assuming only that they are independent: the
// k-th smallest and the k-th largest value, for the largest k for which
// the median of the distribution lies between them with probability at
// least conf. (The number of values below the median is binomial with
// p = 1/2, so the interval misses with probability 2 P(B <= k-1).) ok is
// false when even the smallest and largest do not reach conf.
func medianInterval(v []float64, conf float64) (lo, hi float64, ok bool) {
	n := len(v)
	if n == 0 {
		return 0, 0, false
	}
	// cdf[j] = P(B <= j) for B ~ Binomial(n, 1/2).
	cdf := make([]float64, n+1)
	pj, sum := math.Pow(0.5, float64(n)), 0.0
	for j := 0; j <= n; j++ {
		sum += pj
		cdf[j] = sum
		pj = pj * float64(n-j) / float64(j+1)
	}
	k := 0
	for c := 1; 2*c <= n+1; c++ {
		if 1-2*cdf[c-1] >= conf {
			k = c
		}
	}
	if k == 0 {
		return 0, 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[k-1], s[n-k], true
}

// interval is "lo-hi" of a median interval ("-" for none).
func interval(lo, hi float64) string {
	if lo == 0 && hi == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

// spread is the range of per-round ratios, "lo-hi" ("-" for none).
func spread(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f-%.2f", slices.Min(rs), slices.Max(rs))
}

// medianOf is the median of v (the upper one of an even count; 0 for
// none), leaving v's order alone.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// summarise computes the ratios (first module / second module, and each
// -pair), the session scaling of each module and the verdicts.
func (r *report) summarise(names []string, pairs []pairSpec) {
	seen := map[string]bool{}
	for _, res := range r.Results {
		if seen[res.Op] {
			continue
		}
		seen[res.Op] = true
		op := opByName(res.Op)
		if op == nil || op.harness {
			continue
		}
		for _, k := range r.Sessions {
			if len(names) >= 2 {
				r.Ratios = append(r.Ratios, r.ratioRow(op, k, pairSpec{a: names[0], b: names[1], target: op.target}))
			}
			for _, p := range pairs {
				if op.key == nil {
					p.target = 0
				}
				r.Ratios = append(r.Ratios, r.ratioRow(op, k, p))
			}
			if k == 1 {
				continue
			}
			for i, name := range names {
				one, many := r.find(op.name, name, 1), r.find(op.name, name, k)
				if one == nil || many == nil || one.Status != statusOK || many.Status != statusOK || one.OpsPerSec == 0 {
					continue
				}
				row := scalingRow{Op: op.name, Module: name, Sessions: k, Base: one.OpsPerSec, Scaled: many.OpsPerSec,
					Scaling: pairedRatio(many, one), Rounds: roundRatios(many.RoundsOpsPerSec, one.RoundsOpsPerSec), Verdict: verdictInfo}
				row.IntervalLo, row.IntervalHi, _ = medianInterval(row.Rounds, intervalConf)
				// The scaling target is the module under test's (the first).
				if op.scales && k == 2 && i == 0 {
					row.Target = scalingTarget
					row.Verdict = judge(row.Scaling, scalingTarget)
				}
				r.Scaling = append(r.Scaling, row)
			}
		}
	}
	for i := range r.GoBaseline {
		g := &r.GoBaseline[i]
		g.Verdict = verdictNA
		if len(names) == 0 {
			continue
		}
		g.Module = names[0]
		if m := r.find(g.ModuleOp, names[0], 1); m != nil && m.Status == statusOK && m.OpsPerSec > 0 && g.OpsPerSec > 0 {
			g.ModuleOpsPerSec = m.OpsPerSec
			g.Overhead = pairedRatio(&result{OpsPerSec: g.OpsPerSec, RoundsOpsPerSec: g.RoundsOpsPerSec}, m) - 1
			switch {
			case g.Target == 0:
				g.Verdict = verdictInfo
			case g.Overhead <= g.Target:
				g.Verdict = verdictPass
			default:
				g.Verdict = verdictMiss
			}
		}
	}
	for i := range r.OpenSSLBaseline {
		o := &r.OpenSSLBaseline[i]
		if len(names) == 0 {
			continue
		}
		for _, x := range r.Scaling {
			if x.Op == o.Op && x.Module == names[0] && x.Sessions == 2 {
				o.Module, o.ModuleScaling = names[0], x.Scaling
			}
		}
	}
	r.Pass, r.Miss = 0, 0
	count := func(v string) {
		switch v {
		case verdictPass:
			r.Pass++
		case verdictMiss:
			r.Miss++
		}
	}
	for _, x := range r.Ratios {
		count(x.Verdict)
	}
	for _, x := range r.Scaling {
		count(x.Verdict)
	}
	for _, x := range r.GoBaseline {
		count(x.Verdict)
	}
}

// ratioRow is p.a's ops/s over p.b's on op at k sessions, judged against
// p.target.
func (r *report) ratioRow(op *opDef, k int, p pairSpec) ratioRow {
	a, b := r.find(op.name, p.a, k), r.find(op.name, p.b, k)
	row := ratioRow{Pair: p.name(), Op: op.name, Sessions: k, Target: p.target, Verdict: verdictNA}
	if a != nil && b != nil && a.Status == statusOK && b.Status == statusOK && b.OpsPerSec > 0 {
		row.Ratio = pairedRatio(a, b)
		row.Verdict = judge(row.Ratio, p.target)
	}
	return row
}

func (r *report) write(cfg *config, stdout io.Writer) error {
	if cfg.jsonPath != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("p11bench: json: %w", err)
		}
		b = append(b, '\n')
		if cfg.jsonPath == "-" {
			_, err = stdout.Write(b)
			return err
		}
		if err := os.WriteFile(cfg.jsonPath, b, 0o644); err != nil {
			return fmt.Errorf("p11bench: %w", err)
		}
	}
	_, err := io.WriteString(stdout, r.markdown())
	return err
}

// num formats a rate or a latency with three significant digits at most,
// and thousands separated by a thin space-free comma.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func ratio(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fx", v)
	}
	return fmt.Sprintf("%.2fx", v)
}

func target(t float64) string {
	if t == 0 {
		return "-"
	}
	return fmt.Sprintf(">= %gx", t)
}

func (r *report) markdown() string {
	var b strings.Builder
	var names, pairs []string
	for _, m := range r.Modules {
		names = append(names, m.Name)
	}
	if len(names) >= 2 {
		pairs = append(pairs, names[0]+"/"+names[1])
	}
	for _, x := range r.Ratios {
		if !slices.Contains(pairs, x.Pair) {
			pairs = append(pairs, x.Pair)
		}
	}
	fmt.Fprintf(&b, "Per operation: %s measured after a short warm-up, per module and session count, in %d rounds (%d for the sign operations, which carry the scaling target) of which the median (by ops/s) is shown; within a round the measurements take turns in %d slices (alternating order), so that the ratios compare the same moments; ops/s summed over the sessions; p50/p99 per operation.\n\n", r.Duration, r.Rounds, r.ScalingRounds, r.Slices)
	b.WriteString("| operation | sessions |")
	sep := "|---|---:|"
	for _, n := range names {
		fmt.Fprintf(&b, " %s ops/s | %s p50 us | %s p99 us |", n, n, n)
		sep += "---:|---:|---:|"
	}
	for _, p := range pairs {
		fmt.Fprintf(&b, " %s | target | |", p)
		sep += "---:|---:|---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, op := range opDefs {
		for _, k := range r.Sessions {
			if op.harness {
				if x := r.find(op.name, "p11bench", k); x != nil {
					fmt.Fprintf(&b, "| %s (harness) | %d | %s |\n", op.name, k, cell(x))
				}
				continue
			}
			if r.find(op.name, names[0], k) == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d |", op.name, k)
			for _, n := range names {
				fmt.Fprintf(&b, " %s |", cell(r.find(op.name, n, k)))
			}
			for _, p := range pairs {
				for _, x := range r.Ratios {
					if x.Pair == p && x.Op == op.name && x.Sessions == k {
						rs := "-"
						if x.Verdict != verdictNA {
							rs = ratio(x.Ratio)
						}
						fmt.Fprintf(&b, " %s | %s | %s |", rs, target(x.Target), x.Verdict)
					}
				}
			}
			b.WriteString("\n")
		}
	}
	var notes []string
	for _, res := range r.Results {
		if res.Status != statusOK && res.Status != statusSkipped {
			notes = append(notes, fmt.Sprintf("- %s, %s, %d session(s): %s: %s", res.Op, res.Module, res.Sessions, res.Status, res.Reason))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}

	if len(r.Scaling) > 0 {
		fmt.Fprintf(&b, "\nSession scaling (ops/s with N sessions / ops/s with 1, the median over rounds of the ratio within a round; interval: a confidence interval of at least %.0f%% for the median round's scaling, from the rounds' order alone (no assumption on their distribution); range: the lowest and highest round; the target is the first module's, on sign operations):\n\n", 100*intervalConf)
		b.WriteString("| operation | module | N | 1 session ops/s | N sessions ops/s | scaling | interval | rounds | range | target | |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, x := range r.Scaling {
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %d | %s | %s | %s |\n", x.Op, x.Module, x.Sessions, num(x.Base), num(x.Scaled),
				ratio(x.Scaling), interval(x.IntervalLo, x.IntervalHi), len(x.Rounds), spread(x.Rounds), target(x.Target), x.Verdict)
		}
	}

	if len(r.GoBaseline) > 0 {
		b.WriteString("\nGo's own crypto in this binary, one goroutine, against the first module at 1 session, taking turns with the modules in the slices of each round of the module operation (overhead = module time per op / Go time per op - 1, the median over rounds of the ratio within a round):\n\n")
		b.WriteString("| Go operation | Go ops/s | Go p50 us | module operation | module ops/s | overhead | target | |\n|---|---:|---:|---|---:|---:|---:|---|\n")
		for _, g := range r.GoBaseline {
			mod, over := "-", "-"
			if g.Verdict != verdictNA {
				mod, over = num(g.ModuleOpsPerSec), fmt.Sprintf("%+.0f%%", 100*g.Overhead)
			}
			tgt := "-"
			if g.Target > 0 {
				tgt = fmt.Sprintf("<= %.0f%%", 100*g.Target)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n", g.What, num(g.OpsPerSec), num(g.P50us),
				g.ModuleOp, g.Module, mod, over, tgt, g.Verdict)
		}
	}

	if len(r.OpenSSLBaseline) > 0 {
		b.WriteString("\nOpenSSL's own signing from plain C threads in this binary (the module signs these in the same libcrypto), taking turns with the modules in the slices of each round of the module operation: what it can reach, and this machine's ceiling for 2-session scaling at those moments:\n\n")
		b.WriteString("| OpenSSL operation | 1 thread ops/s | p50 us | p99 us | 2 threads ops/s | p50 us | p99 us | scaling | interval | range | module operation | module scaling |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
		for _, o := range r.OpenSSLBaseline {
			ms := "-"
			if o.Module != "" {
				ms = ratio(o.ModuleScaling)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s |\n", o.What, num(o.One), num(o.P50One), num(o.P99One),
				num(o.Two), num(o.P50Two), num(o.P99Two), ratio(o.Scaling), interval(o.IntervalLo, o.IntervalHi), spread(o.ScalingRounds), o.Op, o.Module, ms)
		}
	}

	b.WriteString("\nClient overhead: the `noop` row is the harness's own cost per timed operation (an indirect call, one clock read, one histogram increment); `get-info` is a module's cheapest entry point.\n")
	b.WriteString("\nSetup:\n\n")
	for _, m := range r.Modules {
		fmt.Fprintf(&b, "- %s (`%s`): %s; token and keys ready in %.2f s", m.Name, m.Path, m.Info, m.KeySetupSeconds)
		if m.FindSetup != "" {
			tok := "a separate find token"
			if m.SameFindToken {
				tok = "the main token"
			}
			fmt.Fprintf(&b, "; find objects on %s: %s in %.1f s", tok, m.FindSetup, m.FindSetupSeconds)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nTargets: %d PASS, %d MISS.\n", r.Pass, r.Miss)
	return b.String()
}

func cell(x *result) string {
	if x == nil {
		return "- | - | -"
	}
	if x.Status != statusOK {
		return x.Status + " | - | -"
	}
	return fmt.Sprintf("%s | %s | %s", num(x.OpsPerSec), num(x.P50us), num(x.P99us))
}
