package main

import (
	"strings"
	"testing"
	"time"
)

const probeLine = "open_us=10000 init_us=30000 init_Rss_kb=20480 init_Pss_kb=19456 init_Shared_Clean_kb=1024 " +
	"init_Private_Clean_kb=15360 init_Private_Dirty_kb=3072 info_us=2000 fin_us=1000 tokens=1 hwm_kb=21504\nmap rss_kb=1 x\n"

func TestParseProbe(t *testing.T) {
	m, err := parseStartProbe(probeLine)
	if err != nil {
		t.Fatal(err)
	}
	if m["init_us"] != 30000 || m["hwm_kb"] != 21504 || m["tokens"] != 1 {
		t.Fatalf("parsed %v", m)
	}
	for _, bad := range []string{
		"",
		"open_us=1 init_us=x",
		strings.Replace(probeLine, "hwm_kb=21504", "", 1),
		strings.Replace(probeLine, "tokens=1", "tokens=0", 1),
		"open_us",
	} {
		if _, err := parseStartProbe(bad); err == nil {
			t.Errorf("parseStartProbe(%q): no error", bad)
		}
	}
}

func TestStartupTable(t *testing.T) {
	a, _ := parseStartProbe(probeLine)
	b, _ := parseStartProbe(strings.Replace(probeLine, "hwm_kb=21504", "hwm_kb=10752", 1))
	c, _ := parseStartProbe(strings.Replace(probeLine, "init_us=30000", "init_us=50000", 1))
	st := map[string]startupStats{
		"x": summariseStartup([]time.Duration{40 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond},
			[]time.Duration{20 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond}, []map[string]int64{a, c, a}),
		"y": summariseStartup([]time.Duration{15 * time.Millisecond}, []time.Duration{5 * time.Millisecond}, []map[string]int64{b}),
	}
	if st["x"].wall != 30*time.Millisecond || st["x"].field["init_us"] != 30000 {
		t.Fatalf("medians: %v", st["x"])
	}
	var sb strings.Builder
	writeStartupTable(&sb, []string{"x", "y"}, st, 3)
	out := sb.String()
	for _, want := range []string{
		"| x | 30.0 | 20.0 | 10.0 | 20.0 | 2.0 | 1.0 | 21.0 | 20.0 | 19.0 | 15.0 | 3.0 |",
		"x/y: wall 2.00x, CPU 4.00x, peak RSS 2.00x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
