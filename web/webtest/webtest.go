// Package webtest drives the dashboard in a headless chromium from Go
// tests: finding the browser (a missing one skips the test, or fails it
// under CI=true, where .ci/run installs it), starting it, opening tabs, and
// running chromedp steps with a deadline that fails the test with what was
// being done. The web package's own browser tests and the end-to-end tests
// of the receiver and the relay share it.
package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

// StepTimeout bounds each Do, Get and JS call.
const StepTimeout = 15 * time.Second

// Chromium returns the browser to drive: $SIDEHOOK_CHROMIUM, else the
// first chromium or chrome on the PATH. Under CI=true a missing browser
// fails the test: .ci/run installs it, so its absence is a broken pipeline,
// not a reason to skip. Elsewhere the test is skipped with the reason.
func Chromium(tb testing.TB) string {
	tb.Helper()
	candidates := []string{os.Getenv("SIDEHOOK_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "no chromium found (apt-get install -y chromium, or set SIDEHOOK_CHROMIUM)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Browser is one headless chromium at 1280×800. Starting one costs
// seconds; a tab in a fresh browser context costs milliseconds and isolates
// cookies just as well, so a package's tests may share one (see Shared).
type Browser struct {
	ctx     context.Context
	stop    func()
	dataDir string
	once    sync.Once
}

// Start launches chromium at path. Close it when done.
func Start(path string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "sidehook-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser profile dir: %w", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	b := &Browser{ctx: bctx, stop: func() { cancel(); cancelAlloc() }, dataDir: dir}
	// The first action starts the browser: no timeout on it, or the
	// timeout would end the browser too (see chromedp.Run).
	if err := chromedp.Do(bctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("start chromium %s: %w", path, err)
	}
	return b, nil
}

// Close stops chromium (waiting for it to exit) and removes its profile.
// It is safe to call more than once.
func (b *Browser) Close() {
	b.once.Do(func() {
		b.stop()
		_ = os.RemoveAll(b.dataDir)
	})
}

// NewTab returns a tab at 1280×800 in a fresh browser context, closed by
// tb.Cleanup.
func (b *Browser) NewTab(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tb.Cleanup(cancel)
	// The first action opens the tab and binds it to its context, so it
	// runs without the deadline Do adds.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		tb.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// Shared is a browser started on first use and shared by a package's
// tests; the package's TestMain calls Close after m.Run.
type Shared struct {
	once sync.Once
	b    *Browser
	err  error
}

// NewTab starts the shared browser if needed (skipping or failing tb as
// Chromium does when there is none) and opens a tab in it.
func (s *Shared) NewTab(tb testing.TB) context.Context {
	tb.Helper()
	path := Chromium(tb)
	s.once.Do(func() { s.b, s.err = Start(path) })
	if s.err != nil {
		tb.Fatal(s.err)
	}
	return s.b.NewTab(tb)
}

// Close stops the shared browser if it was started.
func (s *Shared) Close() {
	if s.b != nil {
		s.b.Close()
	}
}

// VerifyTestMain runs m's tests, closes the shared browser, and then fails
// the run if a test left a goroutine behind (goleak): it looks only once
// chromium is stopped, as the goroutines driving it end with it.
func (s *Shared) VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(runThen{m, s.Close})
}

// runThen is m that calls after once its tests have run.
type runThen struct {
	m     *testing.M
	after func()
}

func (r runThen) Run() int {
	code := r.m.Run()
	r.after()
	return code
}

// NewTab starts a browser for this test alone, closed by tb.Cleanup, and
// opens a tab in it: for a package with one browser test.
func NewTab(tb testing.TB) context.Context {
	tb.Helper()
	b, err := Start(Chromium(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b.NewTab(tb)
}

// Do runs browser steps with StepTimeout, failing the test with what was
// being done.
func Do(tb testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	DoWithin(tb, ctx, what, StepTimeout, steps...)
}

// DoWithin is Do with its own bound, for a step whose work grows with the
// machine's load (a browser reading thousands of messages): a bound, not a
// pace, as the steps end when their conditions hold.
func DoWithin(tb testing.TB, ctx context.Context, what string, within time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// Get runs one browser action that returns a value.
func Get[T any](tb testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	return v
}

// JS evaluates a script in the page (awaiting a promise) and decodes its
// result.
func JS[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	return Get(tb, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// Button finds a button by its accessible text, as a user would.
func Button(name string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space()=%q]`, name))
}

// CopyCurl clicks a detail pane's Copy as curl and waits until the page is
// done: it fills the command's box first and says what it copied in the
// result only once the clipboard has answered, so waiting for the box
// alone would read the result too early. The box and the result are
// emptied first, so neither holds an earlier copy's.
func CopyCurl() []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Evaluate[chromedp.Void](`document.querySelector('textarea.curl').value = ''; document.querySelector('.result').textContent = ''`),
		chromedp.Click(Button("Copy as curl")),
		chromedp.Poll[chromedp.Void](`document.querySelector('textarea.curl').value !== '' && document.querySelector('.result').textContent.includes('curl command')`,
			chromedp.WithPollingTimeout(10*time.Second)),
	}
}

// Screenshot saves the page as name.png when SIDEHOOK_SCREENSHOTS names a
// directory: for looking at the dashboard during development.
func Screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	dir := os.Getenv("SIDEHOOK_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := Get(tb, ctx, "screenshot", chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.Fatal(err)
	}
}
