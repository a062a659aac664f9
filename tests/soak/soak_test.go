// Package soak runs the built libgohsm.so from several processes with
// several threads each against one token (testdata/soak.c): creating and
// destroying token objects, signing and verifying, logging in and out,
// while other processes send a storm of wrong passwords for another user.
// The end state is checked exactly.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gohsm/internal/testenv"
)

const (
	workers   = 3  // processes
	threads   = 4  // per worker process
	rounds    = 25 // login, work, logout, per thread
	perRound  = 3  // creates two objects and destroys one, signs and verifies, this many times a round
	stormers  = 2  // processes
	stormThr  = 3  // threads per storm process
	threshold = 5  // lockout_threshold of the token (testenv's default configuration)
	// The configuration's argon2id takes 4 MiB (testenv's 64 KiB made a
	// derivation too short for wrong passwords to overlap often).
)

type env struct {
	t        *testing.T
	bin, lib string
	vars     []string
	cli      string
	conf     string
}

func (e *env) start(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, e.bin, append([]string{e.lib}, args...)...)
	cmd.Env = e.vars
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd, &out
}

// values parses "KEY n" lines; a "FAIL" line or an error fails the test
// (Errorf: it runs on the goroutines that wait for the workers too).
func (e *env) values(what string, out *bytes.Buffer, err error) map[string]int64 {
	e.t.Helper()
	if err != nil {
		e.t.Errorf("%s: %v\n%s", what, err, out)
		return nil
	}
	m := map[string]int64{}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "FAIL") {
			e.t.Errorf("%s: %s", what, l)
		}
		f := strings.Fields(l)
		if len(f) == 2 {
			if n, err := strconv.ParseInt(f[1], 0, 64); err == nil {
				m[f[0]] = n
			}
		}
	}
	return m
}

func (e *env) run(ctx context.Context, args ...string) map[string]int64 {
	e.t.Helper()
	cmd, out := e.start(ctx, args...)
	m := e.values(strings.Join(args, " "), out, cmd.Wait())
	if e.t.Failed() {
		e.t.FailNow()
	}
	return m
}

func TestSoak(t *testing.T) {
	lib, cli := testenv.Library(t), testenv.CLI(t)
	dir := t.TempDir()
	bin := testenv.CompileC(t, filepath.Join("testdata", "soak.c"), filepath.Join(dir, "soak"))
	tokenDir := filepath.Join(dir, "token")
	conf := filepath.Join(dir, "gohsm.conf")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(strings.Replace(testenv.TokenConfig(tokenDir, "abi"),
		"kdf_memory = 64\n", "kdf_memory = 4096\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, bin: bin, lib: lib, cli: cli, conf: conf,
		vars: append(os.Environ(), "GOHSM_CONF="+conf, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.run(ctx, "setup")

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := map[string]int64{}
	launch := func(args ...string) {
		cmd, out := e.start(ctx, args...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			if ctx.Err() != nil {
				err = fmt.Errorf("timed out after 60 s (a hang): %w", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range e.values(strings.Join(args, " "), out, err) {
				sum[k] += v
			}
		}()
	}
	for range workers {
		launch("work", strconv.Itoa(threads), strconv.Itoa(rounds))
	}
	for range stormers {
		launch("storm", strconv.Itoa(stormThr))
	}
	wg.Wait()
	t.Logf("%d processes x %d threads x %d rounds and %d x %d storm threads: %v; %v",
		workers, threads, rounds, stormers, stormThr, time.Since(start).Round(time.Millisecond), sum)
	if t.Failed() {
		t.FailNow()
	}

	ops := int64(workers * threads * rounds * perRound)
	want := map[string]int64{"CREATED": 2 * ops, "DESTROYED": ops, "SIGNED": ops, "VERIFIED": ops, "ERRORS": 0,
		"INCORRECT": threshold, "LOCKED": stormers * stormThr, "OTHER": 0}
	for k, v := range want {
		if sum[k] != v {
			t.Errorf("%s = %d, want %d", k, sum[k], v)
		}
	}
	if n := e.run(ctx, "count")["COUNT"]; n != sum["CREATED"]-sum["DESTROYED"] {
		t.Errorf("%d soak objects on the token, want %d created - %d destroyed", n, sum["CREATED"], sum["DESTROYED"])
	}
	if rv := e.run(ctx, "login-storm")["LOGIN"]; rv != 0xa4 {
		t.Errorf("storm's right password after the storm: CK_RV 0x%x, want CKR_PIN_LOCKED", rv)
	}
	out, err := exec.CommandContext(ctx, cli, "--config", conf, "--json", "user", "list").Output()
	if err != nil {
		t.Fatalf("gohsm user list: %v", err)
	}
	var l struct {
		Data struct {
			Users []struct {
				Name     string `json:"username"`
				Locked   bool   `json:"locked"`
				Failures int    `json:"failed_logins"`
			}
		}
	}
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("gohsm user list: %v\n%s", err, out)
	}
	seen := 0
	for _, u := range l.Data.Users {
		switch u.Name {
		case "storm":
			seen++
			if !u.Locked || u.Failures != threshold {
				t.Errorf("storm: locked %v after %d failures counted, want locked after exactly %d", u.Locked, u.Failures, threshold)
			}
		case "user":
			seen++
			if u.Locked || u.Failures != 0 {
				t.Errorf("user: locked %v, %d failures, want neither", u.Locked, u.Failures)
			}
		}
	}
	if seen != 2 {
		t.Errorf("users storm and user not both listed: %s", out)
	}
}
