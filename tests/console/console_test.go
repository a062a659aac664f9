// Package console tests the console's web UI in a real browser (issue 18,
// docs/console.md): Debian's Chromium, headless, driven from Go over the
// DevTools protocol (chromedp), against a real `gohsm console` (the built
// CLI, $GOHSM_CLI, listening on 127.0.0.1:0) over a throwaway token made
// with the CLI: officer "officer", crypto users "alice" and "bob".
//
// Every test saves screenshots, named after its steps, under
// $GOHSM_ARTEFACTS/console/ (default build/artefacts/console/).
// GOHSM_UPDATE_SCREENSHOT=1 also writes docs/console.png from the metrics
// test. Under CI=true a missing chromium, CLI or library fails.
package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gohsm/internal/testenv"
)

const (
	officerPIN = "officer:officer-password"
	alicePass  = "alice-password"
	bobPass    = "bob-password"
	tokenLabel = "console"
)

// fixture is what every test of the package shares: one token, one
// console, one browser (each test opens its own browser contexts, so
// cookies never leak from one login to another).
type fixture struct {
	dir, conf, cli string
	base           string // the console's URL, "http://127.0.0.1:PORT/"
	artefacts      string
	console        *exec.Cmd
	consoleOut     *syncBuffer
	browser        context.Context
}

var (
	fixOnce  sync.Once
	fix      *fixture
	fixErr   error
	fixSkip  string
	cleanups []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

// setup returns the shared fixture, making it on first use. A missing
// prerequisite skips (fails under CI=true) every test alike.
func setup(t *testing.T) *fixture {
	t.Helper()
	cli := testenv.CLI(t)
	chromium := findChromium(t)
	fixOnce.Do(func() { fix, fixErr = newFixture(t, cli, chromium) })
	if fixErr != nil {
		t.Fatalf("console test fixture: %v", fixErr)
	}
	return fix
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("GOHSM_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium not found (tests/deps.sh installs Debian's chromium; or set GOHSM_CHROMIUM)")
	return ""
}

func newFixture(t *testing.T, cli, chromium string) (*fixture, error) {
	dir, err := os.MkdirTemp("", "gohsm-console-test-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	f := &fixture{dir: dir, cli: cli, conf: filepath.Join(dir, "gohsm.conf")}
	f.artefacts = os.Getenv("GOHSM_ARTEFACTS")
	if f.artefacts == "" {
		f.artefacts = filepath.Join(testenv.RepoRoot(t), "build", "artefacts")
	}
	f.artefacts = filepath.Join(f.artefacts, "console")
	if err := os.MkdirAll(f.artefacts, 0o755); err != nil {
		return nil, err
	}
	// The screenshots of this run only: the last run's go.
	old, _ := filepath.Glob(filepath.Join(f.artefacts, "*.png"))
	for _, p := range old {
		os.Remove(p)
	}
	fmt.Printf("tests/console: screenshots in %s\n", f.artefacts)

	// A cloudhsm slot: an emulated cluster of 2 HSMs (docs/cluster.md).
	// Each HSM signs at most 2000 ECDSA/s and the SDK does not retry, so
	// the signer of TestLiveChart is throttled (the metrics page's
	// throttled and failed series have something to show).
	conf := testenv.TokenConfig(filepath.Join(dir, "tokens"), tokenLabel) +
		"profile = cloudhsm\nhsms = 2\nthrottle.ec-sign = 2000\nretry_mode = off\n"
	if err := os.WriteFile(f.conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"token", "init", "--label", tokenLabel, "--pin", officerPIN},
		{"user", "create", "--username", "alice", "--role", "crypto-user", "--password", alicePass, "--pin", officerPIN},
		{"user", "create", "--username", "bob", "--role", "crypto-user", "--password", bobPass, "--pin", officerPIN},
		{"key", "generate", "ec", "--curve", "P-256", "--label", "alice-signer", "--id", "a1", "--pin", "alice:" + alicePass},
		{"key", "generate", "aes", "--bits", "256", "--label", "alice-to-share", "--id", "a2", "--pin", "alice:" + alicePass},
		{"key", "generate", "aes", "--bits", "256", "--label", "bob-private", "--id", "b1", "--pin", "bob:" + bobPass},
		{"key", "generate", "aes", "--bits", "128", "--label", "bob-shared", "--id", "b2", "--pin", "bob:" + bobPass},
		{"key", "share", "--label", "bob-shared", "--username", "alice", "--pin", "bob:" + bobPass},
	}
	for _, args := range steps {
		if _, err := f.run(args...); err != nil {
			return nil, err
		}
	}
	if err := f.startConsole(); err != nil {
		return nil, err
	}
	if err := f.startBrowser(chromium); err != nil {
		return nil, err
	}
	return f, nil
}

// run runs the CLI on the fixture's token and returns its stdout.
func (f *fixture) run(args ...string) ([]byte, error) {
	cmd := exec.Command(f.cli, append([]string{"--config", f.conf}, args...)...)
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+f.conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("gohsm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out, nil
}

// cliJSON runs the CLI with --json and decodes its "data" into v.
func (f *fixture) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := f.run(append([]string{"--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Code int             `json:"error_code"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatalf("gohsm --json %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if env.Code != 0 {
		t.Fatalf("gohsm --json %s: error_code %d\n%s", strings.Join(args, " "), env.Code, out)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("gohsm --json %s: data: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var listening = regexp.MustCompile(`^gohsm console: listening on (http://127\.0\.0\.1:[0-9]+/)$`)

// startConsole runs `gohsm console` on 127.0.0.1:0 and reads its one
// line for the port.
func (f *fixture) startConsole() error {
	cmd := exec.Command(f.cli, "--config", f.conf, "console", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "GOHSM_CONF="+f.conf)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	f.consoleOut = &syncBuffer{}
	cmd.Stderr = f.consoleOut
	if err := cmd.Start(); err != nil {
		return err
	}
	f.console = cmd
	exited := make(chan error, 1)
	cleanups = append(cleanups, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				fmt.Fprintf(os.Stderr, "tests/console: gohsm console exited with %v after SIGTERM\n%s", err, f.consoleOut)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			fmt.Fprintf(os.Stderr, "tests/console: gohsm console did not stop within 10 s of SIGTERM\n")
		}
	})
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		if err == nil {
			lines <- strings.TrimSuffix(line, "\n")
		}
		close(lines)
		io.Copy(f.consoleOut, r)
		exited <- cmd.Wait()
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			return fmt.Errorf("gohsm console printed no line:\n%s", f.consoleOut)
		}
		m := listening.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("gohsm console's first line %q is not %q", line, listening)
		}
		f.base = m[1]
	case <-time.After(20 * time.Second):
		return fmt.Errorf("gohsm console printed nothing in 20 s:\n%s", f.consoleOut)
	}
	return nil
}

// startBrowser starts headless Chromium with D8's flags and a fresh
// profile directory.
func (f *fixture) startBrowser(chromium string) error {
	profile := filepath.Join(f.dir, "chromium-profile")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	cleanups = append(cleanups, func() { cancelBrowser(); cancelAlloc() })
	// The first Do starts the browser, which lives as long as the context
	// of that call: browser itself, with no timeout.
	if err := chromedp.Do(browser); err != nil {
		return fmt.Errorf("starting %s: %w", chromium, err)
	}
	f.browser = browser
	return nil
}

// tab opens a page in a browser context of its own (its own cookies), at
// 1280x900, logging the page's console errors and exceptions to t. It is
// closed when the test ends, after checking that the page met no CSP
// violation.
func (f *fixture) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(f.browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	// The page's console errors, warnings and exceptions, logged when the
	// test ends (a test may not log once it has returned).
	var mu sync.Mutex
	var console []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				if strings.Contains(m.Text, "status of 401") && strings.HasSuffix(m.URL, "/api/v1/session") {
					continue // the page asks whether it has a session at start
				}
				mu.Lock()
				console = append(console, fmt.Sprintf("%s: %s %s:%d", m.Type, m.Text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	t.Cleanup(func() {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? (document.body.dataset.cspViolations || '0') : '0'`))
		if err == nil && v != "0" {
			t.Errorf("the page met %s CSP violations", v)
		}
		cancelTimeout()
		cancel()
		mu.Lock()
		for _, l := range console {
			t.Logf("page console %s", l)
		}
		mu.Unlock()
	})
	return ctx
}

// do runs actions in ctx and fails the test, naming what, on an error
// (a timeout included), with a screenshot of the moment.
func (f *fixture) do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		f.failed(t, ctx, what, err)
	}
}

func (f *fixture) failed(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	f.shot(t, ctx, "FAILED-"+t.Name()+"-"+what)
	t.Fatalf("%s: %v\nconsole's stderr:\n%s", what, err, f.consoleOut)
}

// get runs one action that returns a value, as do.
func get[T any](t *testing.T, f *fixture, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		f.failed(t, ctx, what, err)
	}
	return v
}

// css is a CSS selector (DOM.querySelector).
type css = chromedp.CSS

// text is the text of the first element sel matches.
func (f *fixture) text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, f, ctx, "read "+sel, chromedp.Text(css(sel)))
}

// shot saves a screenshot of the page's viewport as ARTEFACTS/name.png.
func (f *fixture) shot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	name = strings.NewReplacer("/", "-", " ", "-").Replace(name)
	p := filepath.Join(f.artefacts, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("writing %s: %v", p, err)
	}
	t.Logf("screenshot %s", p)
	return png
}

// login logs user in through the login page and waits for the keys page.
func (f *fixture) login(t *testing.T, ctx context.Context, user, password string) {
	t.Helper()
	f.do(t, ctx, "open the login page",
		chromedp.Navigate(f.base+"#/login"),
		chromedp.WaitVisible(css(`[data-test="login-username"]`)))
	f.do(t, ctx, "log in as "+user,
		chromedp.SendKeys(css(`[data-test="login-username"]`), user),
		chromedp.SendKeys(css(`[data-test="login-password"]`), password),
		chromedp.Click(css(`[data-test="login-submit"]`)),
		chromedp.WaitVisible(css(`#view[data-page="keys"] [data-test="key-list-box"] > [data-test]`)))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, f *fixture, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, f, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// syncBuffer collects a process's output from one goroutine for another.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
