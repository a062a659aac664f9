package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/ck"
)

// The multi-process tests re-execute the test binary with helperEnv set; the
// child runs one helper instead of the tests.
const helperEnv = "GOHSM_STORE_TEST_HELPER"

// processTempDir holds fixtures shared by several tests and benchmarks of
// one run; TestMain removes it.
var processTempDir string

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		var err error
		if processTempDir, err = os.MkdirTemp("", "gohsm-store-test-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		code := m.Run()
		os.RemoveAll(processTempDir)
		os.Exit(code)
	case "writer":
		os.Exit(helperWriter())
	case "stepper":
		os.Exit(helperStepper())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperWriter opens STORE_DIR and creates STORE_COUNT objects (forever if
// 0) with unique IDs STORE_PREFIX-<n>, printing each ID after CreateObject
// returned nil. Stdout is unbuffered, so a printed ID is a committed one.
// With STORE_PAUSE_US it sleeps up to that long between objects; with
// STORE_BURST and STORE_QUIET_MS it also rests that long after every
// STORE_BURST objects.
func helperWriter() int {
	dir, prefix := os.Getenv("STORE_DIR"), os.Getenv("STORE_PREFIX")
	count, _ := strconv.Atoi(os.Getenv("STORE_COUNT"))
	pause, _ := strconv.Atoi(os.Getenv("STORE_PAUSE_US"))
	burst, _ := strconv.Atoi(os.Getenv("STORE_BURST"))
	quiet, _ := strconv.Atoi(os.Getenv("STORE_QUIET_MS"))
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	defer s.Close()
	for i := 0; count == 0 || i < count; i++ {
		o, err := s.CreateObject(obj(fmt.Sprintf("%s-%d", prefix, i), "", false, prefix))
		if err != nil {
			fmt.Fprintln(os.Stderr, "create:", err)
			return 1
		}
		fmt.Printf("%d %s\n", o.ID, o.UniqueID)
		if pause > 0 {
			time.Sleep(time.Duration(rand.IntN(pause)) * time.Microsecond)
		}
		if burst > 0 && (i+1)%burst == 0 {
			time.Sleep(time.Duration(quiet) * time.Millisecond)
		}
	}
	return 0
}

// helperStepper creates one object per line read from stdin and answers
// each with a line once it is committed.
func helperStepper() int {
	s, err := Open(os.Getenv("STORE_DIR"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	defer s.Close()
	sc := bufio.NewScanner(os.Stdin)
	for i := 0; sc.Scan(); i++ {
		if _, err := s.CreateObject(obj(fmt.Sprint("step-", i), "", false, "step")); err != nil {
			fmt.Fprintln(os.Stderr, "create:", err)
			return 1
		}
		fmt.Println("committed")
	}
	return 0
}

func helperCmd(t *testing.T, dir, prefix string, count int) *exec.Cmd {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=writer", "STORE_DIR="+dir,
		"STORE_PREFIX="+prefix, "STORE_COUNT="+strconv.Itoa(count))
	return cmd
}

func TestConcurrentWriterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	// Both writers also race to create the fresh token's schema.
	dir := t.TempDir()
	watcher := openTest(t, dir)
	g0, err := watcher.Generation()
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	out := make([][]byte, 2)
	start := time.Now()
	for i := range 2 {
		cmd := helperCmd(t, dir, fmt.Sprint("w", i), 500)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = cmd.Output()
			if ee, ok := errs[i].(*exec.ExitError); ok {
				errs[i] = fmt.Errorf("%w: %s", ee, ee.Stderr)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i := range 2 {
		require.NoError(t, errs[i], "writer %d", i)
	}
	t.Logf("2 processes x 500 objects in %v (%.0f objects/s)", elapsed, 1000/elapsed.Seconds())

	s := openTest(t, dir)
	ids, err := s.Find(Query{})
	require.NoError(t, err)
	assert.Len(t, ids, 1000)
	for i := range 2 {
		ids, err := s.Find(Query{Match: map[ck.AttributeType][]byte{ck.CKA_LABEL: []byte(fmt.Sprint("w", i))}})
		require.NoError(t, err)
		assert.Len(t, ids, 500, "writer %d", i)
	}
	g1, err := watcher.Generation()
	require.NoError(t, err)
	assert.NotEqual(t, g0, g1, "commits by other processes change Generation")
}

// TestCrashSafety SIGKILLs a writer at random moments; every object whose
// ID it printed must be in the token afterwards, and the token must open.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const kills = 50
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	shared := t.TempDir()
	total := 0
	for k := range kills {
		// Every fifth run is on a fresh directory and may be killed before
		// the first commit, so the kill also lands inside schema creation.
		dir, wait := shared, true
		if k%5 == 0 {
			dir, wait = t.TempDir(), false
		}
		cmd := helperCmd(t, dir, fmt.Sprint("k", k), 0)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		var mu sync.Mutex
		var printed []string
		first := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			once := sync.Once{}
			for sc.Scan() {
				mu.Lock()
				printed = append(printed, sc.Text())
				mu.Unlock()
				once.Do(func() { close(first) })
			}
		}()
		if wait {
			select {
			case <-first:
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("writer printed nothing in 10 s")
			}
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-done
		err = cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		require.True(t, ws.Signaled(), "writer must die by the kill, not on its own: %v", err)

		s, err := Open(dir, Options{})
		require.NoError(t, err, "kill %d: token must open", k)
		for _, line := range printed {
			var id int64
			var uid string
			_, err := fmt.Sscanf(line, "%d %s", &id, &uid)
			require.NoError(t, err, "line %q", line)
			o, err := s.Object(id)
			require.NoError(t, err, "kill %d: committed object %d lost", k, id)
			require.Equal(t, uid, o.UniqueID)
			require.Equal(t, []byte("sealed-"+uid), o.Sealed[ck.CKA_VALUE])
		}
		total += len(printed)
		require.NoError(t, s.Close())
	}
	t.Logf("%d kills, %d committed objects checked", kills, total)
}

// TestGenerationSeesOtherProcess commits one object at a time in another
// process; each commit must change Generation here, on the fast path and on
// the data_version fallback alike.
func TestGenerationSeesOtherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, mode := range []string{"wal-index", "data_version"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			ss := s.(*sqliteStore)
			require.NotNil(t, ss.shmF, "fast path available")
			require.NotNil(t, ss.shm.mem, "the WAL-index header is mapped")
			if mode == "data_version" {
				withoutWALIndex(t, ss)
			}
			cmd := helperCmd(t, dir, "", 0)
			cmd.Env = append(cmd.Env, helperEnv+"=stepper")
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			defer cmd.Wait()
			defer stdin.Close()
			replies := bufio.NewScanner(stdout)

			for i := range 30 {
				before, err := s.Generation()
				require.NoError(t, err)
				_, err = fmt.Fprintln(stdin, "go")
				require.NoError(t, err)
				require.True(t, replies.Scan(), "stepper died")
				after, err := s.Generation()
				require.NoError(t, err)
				require.NotEqual(t, before, after, "commit %d by another process", i)
				ids, err := s.Find(Query{})
				require.NoError(t, err)
				require.Len(t, ids, i+1)
			}
		})
	}
}
