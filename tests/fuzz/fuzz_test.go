// Package fuzz runs the C-ABI fuzzer (testdata/abi_fuzz.c) against the
// built libgohsm.so: random templates, parameter structures with hostile
// inner lengths and random call sequences from three threads while a
// fourth closes sessions. Each seed of a fixed list runs for
// $GOHSM_FUZZ_TIME (default 3s; `make fuzz` sets FUZZTIME), and when that
// is set a seed from the clock runs too (printed, to reproduce:
// abi_fuzz LIB SEED MS).
package fuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gohsm/internal/testenv"
)

var seeds = []uint64{1, 2, 3}

func TestABIFuzz(t *testing.T) {
	lib := testenv.Library(t)
	dur := 3 * time.Second
	seedList := seeds
	if v := os.Getenv("GOHSM_FUZZ_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("GOHSM_FUZZ_TIME=%q: want a duration", v)
		}
		dur = d
		seedList = append(seedList, uint64(time.Now().UnixNano()))
	}
	dir := t.TempDir()
	bin := testenv.CompileC(t, filepath.Join("testdata", "abi_fuzz.c"), filepath.Join(dir, "abi_fuzz"))
	for _, seed := range seedList {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			d := t.TempDir()
			tokenDir := filepath.Join(d, "token")
			conf := filepath.Join(d, "gohsm.conf")
			if err := os.MkdirAll(tokenDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(conf, []byte(testenv.TokenConfig(tokenDir, "abi")), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, lib, fmt.Sprint(seed), fmt.Sprint(dur.Milliseconds()))
			cmd.Env = append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+d, "XDG_DATA_HOME="+d)
			cmd.WaitDelay = 5 * time.Second
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var fails []string
			passes := 0
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, "FAIL") && len(fails) < 20 {
					fails = append(fails, l)
				}
				if strings.HasPrefix(l, "PASS") {
					passes++
				}
			}
			tail := out.String()
			if len(tail) > 4000 {
				tail = tail[len(tail)-4000:]
			}
			switch {
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				t.Fatalf("seed %d: a hang (no end %v after the fuzzing time)\n%s", seed, 60*time.Second, tail)
			case err != nil || len(fails) > 0 || passes == 0:
				t.Fatalf("seed %d (rerun: %s %s %d %d): %v\n%s\n...\n%s", seed, bin, lib, seed, dur.Milliseconds(), err,
					strings.Join(fails, "\n"), tail)
			}
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, "seed ") {
					t.Log(l)
				}
			}
		})
	}
}
