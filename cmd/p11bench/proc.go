package main

// The whole-process benchmark (issue 19, target 4): `p11bench proc SPEC`
// runs each command of SPEC (made by scripts/bench-proc.sh) N times as a
// child process, takes its wall time and peak RSS from wait4 (ru_maxrss),
// and prints medians, maxima and the ratios of one module to another
// against the targets SPEC gives. It is a mode of p11bench, not a shell
// loop around /usr/bin/time, so that the statistics and the verdicts are
// Go code with a unit test, and the runs of every module are interleaved
// (run i of every command before run i+1) so drift in the machine's load
// falls on both sides alike.

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procSpec is what SPEC says: commands, one per (row, module), and
// targets, one per row at most.
//
//	cmd<TAB>row<TAB>module<TAB>shell command
//	target<TAB>row<TAB>wall ratio<TAB>rss ratio   (0: no target)
//	pair<TAB>module<TAB>baseline module
type procSpec struct {
	rows    []string // in order of first appearance
	modules []string
	cmds    map[[2]string]string // row, module -> command
	targets map[string][2]float64
	pair    [2]string
}

func parseProcSpec(r io.Reader) (*procSpec, error) {
	s := &procSpec{cmds: map[[2]string]string{}, targets: map[string][2]float64{}}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		bad := func(why string) error { return fmt.Errorf("spec line %d: %s: %q", n, why, line) }
		switch f[0] {
		case "cmd":
			if len(f) != 4 || f[1] == "" || f[2] == "" || f[3] == "" {
				return nil, bad("want cmd, row, module, command")
			}
			if !slices.Contains(s.rows, f[1]) {
				s.rows = append(s.rows, f[1])
			}
			if !slices.Contains(s.modules, f[2]) {
				s.modules = append(s.modules, f[2])
			}
			k := [2]string{f[1], f[2]}
			if _, dup := s.cmds[k]; dup {
				return nil, bad("second command for the same row and module")
			}
			s.cmds[k] = f[3]
		case "target":
			if len(f) != 4 {
				return nil, bad("want target, row, wall ratio, rss ratio")
			}
			var t [2]float64
			for i, v := range f[2:] {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || x < 0 {
					return nil, bad("ratio is not a number >= 0")
				}
				t[i] = x
			}
			s.targets[f[1]] = t
		case "pair":
			if len(f) != 3 {
				return nil, bad("want pair, module, baseline")
			}
			s.pair = [2]string{f[1], f[2]}
		default:
			return nil, bad("unknown kind")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(s.cmds) == 0 {
		return nil, errors.New("spec: no commands")
	}
	for row := range s.targets {
		if !slices.Contains(s.rows, row) {
			return nil, fmt.Errorf("spec: target for unknown row %q", row)
		}
	}
	for _, m := range s.pair {
		if m != "" && !slices.Contains(s.modules, m) {
			return nil, fmt.Errorf("spec: pair names unknown module %q", m)
		}
	}
	return s, nil
}

// procSample is one run: wall time and peak resident memory.
type procSample struct {
	wall time.Duration
	rss  int64 // bytes
}

// procStats summarises a command's runs.
type procStats struct {
	medWall, maxWall time.Duration
	medRSS, maxRSS   int64
}

// procMedian of sorted-or-not values; the mean of the middle two for an even
// count.
func procMedian[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func summarise(samples []procSample) procStats {
	var walls []time.Duration
	var rss []int64
	for _, s := range samples {
		walls = append(walls, s.wall)
		rss = append(rss, s.rss)
	}
	if len(samples) == 0 {
		return procStats{}
	}
	return procStats{medWall: procMedian(walls), maxWall: slices.Max(walls), medRSS: procMedian(rss), maxRSS: slices.Max(rss)}
}

// procVerdict compares a ratio with its target (0: none).
func procVerdict(ratio, target float64) string {
	switch {
	case target == 0:
		return verdictInfo
	case ratio <= target:
		return verdictPass
	default:
		return verdictMiss
	}
}

// runOnce runs command under sh (exec'd, so the rusage is the tool's own)
// and returns its sample; output goes to log.
func runOnce(command string, log io.Writer) (procSample, error) {
	c := exec.Command("/bin/sh", "-c", "exec "+command)
	c.Stdout, c.Stderr = log, log
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	if err != nil {
		return procSample{}, fmt.Errorf("%s: %w", command, err)
	}
	ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return procSample{}, errors.New("no rusage")
	}
	return procSample{wall: wall, rss: ru.Maxrss * 1024}, nil // Linux: KiB
}

// runLaunched is runOnce through launcher (build/maxrss): the command's
// peak RSS without p11bench's own under it, and its wall time from the
// launcher's fork to its wait4.
func runLaunched(launcher, command string, log io.Writer) (procSample, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return procSample{}, err
	}
	defer r.Close()
	c := exec.Command(launcher, "/bin/sh", "-c", "exec "+command)
	c.Stdout, c.Stderr = log, log
	c.ExtraFiles = []*os.File{w} // descriptor 3
	err = c.Start()
	w.Close()
	if err != nil {
		return procSample{}, fmt.Errorf("%s: %w", launcher, err)
	}
	out, rerr := io.ReadAll(r)
	if err := c.Wait(); err != nil {
		return procSample{}, fmt.Errorf("%s: %w", command, err)
	}
	if rerr != nil {
		return procSample{}, rerr
	}
	return parseLaunched(string(out))
}

// parseLaunched reads the launcher's "maxrss_kb=N wall_us=T" line.
func parseLaunched(line string) (procSample, error) {
	var kb, us int64
	if n, err := fmt.Sscanf(strings.TrimSpace(line), "maxrss_kb=%d wall_us=%d", &kb, &us); n != 2 || err != nil || kb <= 0 || us < 0 {
		return procSample{}, fmt.Errorf("launcher said %q, want maxrss_kb=N wall_us=T", line)
	}
	return procSample{wall: time.Duration(us) * time.Microsecond, rss: kb * 1024}, nil
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
}

// writeProcTable prints the Markdown table: one line per row and module,
// then the ratios of spec.pair against the row's targets.
func writeProcTable(w io.Writer, s *procSpec, stats map[[2]string]procStats, runs int) (miss int) {
	fmt.Fprintf(w, "Whole process, %d runs of each command (wall time from fork to wait4, peak RSS from ru_maxrss):\n\n", runs)
	fmt.Fprintln(w, "| command | module | median wall | max wall | median peak RSS | max peak RSS |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, row := range s.rows {
		for _, m := range s.modules {
			st, ok := stats[[2]string{row, m}]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", row, m,
				secs(st.medWall), secs(st.maxWall), fmtMiB(st.medRSS), fmtMiB(st.maxRSS))
		}
	}
	a, b := s.pair[0], s.pair[1]
	if a == "" {
		return 0
	}
	fmt.Fprintf(w, "\n| command | %s/%s wall (median) | target | verdict | %s/%s peak RSS (median) | target | verdict |\n", a, b, a, b)
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---|")
	pass := 0
	for _, row := range s.rows {
		sa, okA := stats[[2]string{row, a}]
		sb, okB := stats[[2]string{row, b}]
		if !okA || !okB || sb.medWall == 0 || sb.medRSS == 0 {
			continue
		}
		t := s.targets[row]
		rw := float64(sa.medWall) / float64(sb.medWall)
		rr := float64(sa.medRSS) / float64(sb.medRSS)
		cell := func(x float64) string {
			if x == 0 {
				return "-"
			}
			return fmt.Sprintf("≤ %.2fx", x)
		}
		vw, vr := procVerdict(rw, t[0]), procVerdict(rr, t[1])
		for _, v := range []string{vw, vr} {
			switch v {
			case verdictPass:
				pass++
			case verdictMiss:
				miss++
			}
		}
		fmt.Fprintf(w, "| %s | %.2fx | %s | %s | %.2fx | %s | %s |\n", row, rw, cell(t[0]), vw, rr, cell(t[1]), vr)
	}
	fmt.Fprintf(w, "\nWhole-process targets: %d PASS, %d MISS.\n", pass, miss)
	return miss
}

// procMain is `p11bench proc [-runs N] [-log FILE] [-launcher MAXRSS] SPEC`.
func procMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench proc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 10, "timed runs of each command (after one untimed warm-up)")
	logPath := fs.String("log", "", "append the commands' output to this file (default: discarded)")
	launcher := fs.String("launcher", "", "run each command through this build/maxrss, so its peak RSS is its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *runs < 1 {
		return errors.New("usage: p11bench proc [-runs N] [-log FILE] [-launcher MAXRSS] SPEC")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	spec, err := parseProcSpec(f)
	f.Close()
	if err != nil {
		return err
	}
	log := io.Discard
	if *logPath != "" {
		lf, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer lf.Close()
		log = lf
	}
	samples := map[[2]string][]procSample{}
	for i := -1; i < *runs; i++ { // -1: the warm-up (page cache, first dlopen)
		for _, row := range spec.rows {
			for _, m := range spec.modules {
				k := [2]string{row, m}
				c, ok := spec.cmds[k]
				if !ok {
					continue
				}
				var s procSample
				var err error
				if *launcher != "" {
					s, err = runLaunched(*launcher, c, log)
				} else {
					s, err = runOnce(c, log)
				}
				if err != nil {
					return fmt.Errorf("%s, %s: %w", row, m, err)
				}
				if i >= 0 {
					samples[k] = append(samples[k], s)
				}
			}
		}
	}
	stats := map[[2]string]procStats{}
	for k, v := range samples {
		stats[k] = summarise(v)
	}
	writeProcTable(stdout, spec, stats, *runs)
	return nil
}
