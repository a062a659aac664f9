package main

// `p11bench startup NAME=MODULE...` (issue 19, target 1's no-login row):
// the start-up of a module as a short-lived client pays it -- dlopen,
// C_Initialize, C_GetSlotList, C_GetTokenInfo, C_Finalize -- measured by
// build/startprobe (cmd/p11bench/startprobe), a C program that does only
// that, so no Go runtime of the caller's is in the figures. Each module's
// probe runs -runs times, interleaved (run i of every module before run
// i+1); the table gives medians of the process's wall time (fork to
// wait4), of each step's time as the probe saw it, of the peak RSS (the
// probe's own VmHWM: ru_maxrss would carry p11bench's peak across exec,
// docs/bench.md), and of smaps_rollup read right after C_Initialize (Rss,
// Pss, Private), and the process's CPU time (user + system, from wait4:
// less sensitive than wall time to a loaded machine). With -evict (the
// default) each module's file is dropped from the page cache
// (POSIX_FADV_DONTNEED) before the warm-up run, so that every library is
// read back the same way: how many of a library's file pages a process
// maps depends on the page-cache folios the kernel made when it read the
// file (a library just written by the linker maps more). The environment
// passes through: GOHSM_CONF and SOFTHSM2_CONF say which tokens.
// docs/bench.md, "Start-up".

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startupKeys are the probe's numeric fields the table uses.
var startupKeys = []string{"open_us", "init_us", "info_us", "fin_us", "hwm_kb",
	"init_Rss_kb", "init_Pss_kb", "init_Private_Clean_kb", "init_Private_Dirty_kb", "tokens"}

// parseStartProbe reads the start-up probe's first output line (key=value pairs).
func parseStartProbe(out string) (map[string]int64, error) {
	line, _, _ := strings.Cut(out, "\n")
	m := map[string]int64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("probe output: %q is not key=value", f)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("probe output: %s: %w", k, err)
		}
		m[k] = n
	}
	for _, k := range startupKeys {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("probe output lacks %s: %q", k, line)
		}
	}
	if m["tokens"] < 1 {
		return nil, errors.New("probe saw no token: the module's configuration is missing")
	}
	return m, nil
}

type startupStats struct {
	wall, cpu time.Duration
	field     map[string]int64 // medians
}

func summariseStartup(walls, cpus []time.Duration, runs []map[string]int64) startupStats {
	s := startupStats{wall: procMedian(walls), cpu: procMedian(cpus), field: map[string]int64{}}
	for _, k := range startupKeys {
		v := make([]int64, len(runs))
		for i, r := range runs {
			v[i] = r[k]
		}
		s.field[k] = procMedian(v)
	}
	return s
}

func writeStartupTable(w io.Writer, names []string, st map[string]startupStats, runs int) {
	ms := func(us int64) string { return fmt.Sprintf("%.1f", float64(us)/1000) }
	mib := func(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }
	fmt.Fprintf(w, "Start-up, medians of %d runs (times in ms, memory in MiB; Rss/Pss/Private read after C_Initialize)\n\n", runs)
	fmt.Fprintln(w, "| module | wall | CPU | dlopen | C_Initialize | slots+token info | C_Finalize | peak RSS | Rss | Pss | Private clean | Private dirty |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range names {
		s := st[n]
		f := s.field
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
			ms(s.wall.Microseconds()), ms(s.cpu.Microseconds()), ms(f["open_us"]), ms(f["init_us"]-f["open_us"]), ms(f["info_us"]), ms(f["fin_us"]),
			mib(f["hwm_kb"]), mib(f["init_Rss_kb"]), mib(f["init_Pss_kb"]), mib(f["init_Private_Clean_kb"]), mib(f["init_Private_Dirty_kb"]))
	}
	if len(names) >= 2 {
		a, b := st[names[0]], st[names[1]]
		if b.wall > 0 && b.field["hwm_kb"] > 0 {
			fmt.Fprintf(w, "\n%s/%s: wall %.2fx, CPU %.2fx, peak RSS %.2fx\n", names[0], names[1],
				float64(a.wall)/float64(b.wall), float64(a.cpu)/float64(b.cpu), float64(a.field["hwm_kb"])/float64(b.field["hwm_kb"]))
		}
	}
}

func init() { subcommands["startup"] = startupMain }

func startupMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("p11bench startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 20, "runs per module")
	probe := fs.String("probe", "build/startprobe", "the probe (make build/startprobe)")
	evict := fs.Bool("evict", true, "drop each module file from the page cache before the warm-up")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: p11bench startup [-runs N] [-probe PATH] NAME=MODULE.so...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || *runs < 1 {
		fs.Usage()
		return errors.New("want at least one NAME=MODULE and -runs >= 1")
	}
	var names, paths []string
	for _, a := range fs.Args() {
		n, p, ok := strings.Cut(a, "=")
		if !ok || n == "" || p == "" {
			return fmt.Errorf("%q: want NAME=MODULE", a)
		}
		names, paths = append(names, n), append(paths, p)
	}
	if *evict {
		for _, p := range paths {
			if err := evictFile(p); err != nil {
				return err
			}
		}
	}
	walls := make([][]time.Duration, len(names))
	cpus := make([][]time.Duration, len(names))
	samples := make([][]map[string]int64, len(names))
	for r := -1; r < *runs; r++ { // run -1: the untimed warm-up
		for i := range names {
			c := exec.Command(*probe, paths[i])
			var out, errb strings.Builder
			c.Stdout, c.Stderr = &out, &errb
			start := time.Now()
			err := c.Run()
			wall := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s: %w: %s", names[i], err, strings.TrimSpace(errb.String()))
			}
			m, err := parseStartProbe(out.String())
			if err != nil {
				return fmt.Errorf("%s: %w", names[i], err)
			}
			ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				return errors.New("no rusage")
			}
			if r >= 0 {
				walls[i] = append(walls[i], wall)
				cpus[i] = append(cpus[i], time.Duration(ru.Utime.Nano()+ru.Stime.Nano()))
				samples[i] = append(samples[i], m)
			}
		}
	}
	st := map[string]startupStats{}
	for i, n := range names {
		st[n] = summariseStartup(walls[i], cpus[i], samples[i])
	}
	writeStartupTable(stdout, names, st, *runs)
	return nil
}

// evictFile drops path's clean pages from the page cache (a hint: pages
// another process maps stay).
func evictFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("%s: fadvise: %w", path, err)
	}
	return nil
}
