package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// lineBuffer collects output written from many goroutines (the pipeline
// logs from several) and reads it back safely.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var wallboardURL = regexp.MustCompile(`Wallboard\s+(http://\S+/)`)

// waitWallboard waits for the demo banner and returns the wallboard URL.
func waitWallboard(t *testing.T, out fmt.Stringer, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := wallboardURL.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no wallboard URL after %s; output:\n%s", timeout, out)
	return ""
}

// openBrowser starts headless Chromium (bin) with a 1920×1080 window for
// at most timeout, and returns its tab's context and eval, which runs js
// in the page and decodes its value into res; a failure names log's
// output (nil: none).
func openBrowser(t *testing.T, bin string, timeout time.Duration, log fmt.Stringer) (context.Context, func(js string, res any)) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1920, 1080), chromedp.Flag("disable-quic", true),
		chromedp.Flag("hide-scrollbars", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancel(); cancelTab(); cancelAlloc() })
	eval := func(js string, res any) {
		t.Helper()
		j, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify("+js+")"))
		if err == nil {
			err = json.Unmarshal([]byte(j), res)
		}
		if err != nil {
			out := ""
			if log != nil {
				out = "\nlog:\n" + log.String()
			}
			t.Fatalf("evaluating %s: %v%s", js, err, out)
		}
	}
	return ctx, eval
}

// chromium returns the path of the Chromium binary. `make test` installs
// Debian's chromium and sets ACW_REQUIRE_BROWSER, so CI never skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ACW_REQUIRE_BROWSER") != "" {
		t.Fatal("chromium is not installed: run `make test`, which installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; `make test` installs it")
	return ""
}

// TestWallboardInBrowser drives headless Chromium against a running demo:
// agents appear, a wrap-up turns red once past its overrun threshold, the alert feed shows
// its overrun, the page keeps updating without a reload, and once the
// server stops the board says it is stale and its timers stop. With
// ACW_SCREENSHOT=FILE it also writes a 1920×1080 screenshot (the README's).
func TestWallboardInBrowser(t *testing.T) {
	bin := chromium(t)
	demoCtx, stopDemo := context.WithCancel(context.Background())
	defer stopDemo()
	var out, errOut lineBuffer
	done := make(chan error, 1)
	const agents = 24
	go func() {
		// An overrun threshold below the simulated wrap-ups' median (14 s:
		// about 60 % of them pass 12 s), so that overruns come within
		// seconds at any time of day: with the default 30 s (10 % pass
		// it), some start times gave none within the test's window (the
		// simulated call volume follows the clock).
		done <- runDemo(demoCtx, []string{"--http", "127.0.0.1:0", "--speed", "4", "--agents", fmt.Sprint(agents),
			"--teams", "3", "--seed", "5", "--log-level", "error", "--warn", "6s", "--overrun", "12s"}, nil, &out, &errOut)
	}()
	url := waitWallboard(t, &out, 30*time.Second)

	ctx, eval := openBrowser(t, bin, 3*time.Minute, &errOut)
	// poll evaluates js every 200 ms until it returns a non-empty string.
	poll := func(what, js string, timeout time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			var s string
			eval(js, &s)
			if s != "" {
				return s
			}
			if time.Now().After(deadline) {
				var html string
				eval(`document.querySelector("main").innerText.slice(0, 3000)`, &html)
				t.Fatalf("%s: not seen within %s; page:\n%s\ndemo log:\n%s", what, timeout, html, errOut.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	var ignored any
	eval(`window.__loadMarker = "same page"`, &ignored)

	// Agents appear, each with a state label and a timer.
	poll("every agent on the board", fmt.Sprintf(`document.querySelectorAll("#agents .agent").length >= %d ? "yes" : ""`, agents), 30*time.Second)
	var first struct {
		Updates int    `json:"updates"`
		Label   string `json:"label"`
		Timer   string `json:"timer"`
	}
	eval(`(() => { const a = document.querySelector("#agents .agent");
		return {updates: Number(document.body.dataset.updates), label: a.querySelector(".state").textContent, timer: a.querySelector(".timer").textContent}; })()`, &first)
	if first.Label == "" || !regexp.MustCompile(`^\d+:\d\d$`).MatchString(first.Timer) {
		t.Fatalf("agent card without a state label or timer: %+v", first)
	}
	// The simulated feed gives display names (agent_name): cards show
	// them, and keep the id in their data and tooltip.
	var named string
	eval(`(() => { const a = document.querySelector("#agents .agent");
		return a.querySelector(".name").textContent + "|" + a.dataset.agent; })()`, &named)
	if name, id, _ := strings.Cut(named, "|"); name == id || !strings.HasPrefix(id, "agent-") || !strings.Contains(name, " ") {
		t.Errorf("agent card name %q for %q, want the display name the feed gave", name, id)
	}

	// A wrap-up seen below its overrun threshold turns red once past it,
	// and the alert feed shows that wrap-up's overrun. (A card can also
	// turn red for a moment when its close is still on the way: timers
	// run in the browser. The alert proves the overrun was real.)
	red := poll("a wrap-up turning red, with its overrun alert in the feed", `(() => {
		const seen = window.__plainACW = window.__plainACW || {};
		for (const li of document.querySelectorAll("#agents .agent.s-acw")) {
			const k = li.dataset.agent + "@" + li.dataset.start;
			if (!li.classList.contains("over")) { seen[k] = true; continue; }
			const sel = ' li[data-kind="overrun"][data-agent="' + li.dataset.agent + '"][data-start="' + li.dataset.start + '"]';
			const alert = document.querySelector("#active-alerts" + sel + ", #alerts" + sel);
			if (seen[k] && alert) return k + "@" + alert.textContent;
		}
		return "";
	})()`, 2*time.Minute)
	parts := strings.SplitN(red, "@", 3)
	agent, alert := parts[0], parts[2]
	var shown string // the agent's display name on its card
	eval(fmt.Sprintf(`document.querySelector('#agents .agent[data-agent=%q] .name').textContent`, agent), &shown)
	if !strings.Contains(alert, "Overrun") || !strings.Contains(alert, shown) || !strings.Contains(alert, "past 12 s") {
		t.Errorf("alert entry %q does not name the kind, the agent (%s) and the threshold", alert, shown)
	}
	var card struct {
		Background string `json:"bg"`
		Flag       string `json:"flag"`
		State      string `json:"state"`
		Timer      string `json:"timer"`
	}
	eval(fmt.Sprintf(`(() => { const li = document.querySelector('#agents .agent[data-agent=%q]');
		return {bg: getComputedStyle(li).backgroundColor, flag: li.querySelector(".flag").textContent,
			state: li.querySelector(".state").textContent, timer: li.querySelector(".timer").textContent}; })()`, agent), &card)
	if card.State == "Wrap-up" { // it may have finished meanwhile
		if card.Background != "rgb(198, 40, 40)" {
			t.Errorf("overrun card of %s has background %s, want the red rgb(198, 40, 40)", agent, card.Background)
		}
		if card.Flag != "Overrun" {
			t.Errorf("overrun card of %s is flagged %q, want the text label Overrun (not colour alone)", agent, card.Flag)
		}
		if m := regexp.MustCompile(`^(\d+):(\d\d)$`).FindStringSubmatch(card.Timer); m == nil || m[1] == "0" && m[2] < "12" {
			t.Errorf("overrun card of %s shows timer %q, want at least 0:12", agent, card.Timer)
		}
	}

	// The alert feed: the open overruns with a live timer; the history
	// newest first, one line per wrap-up (its overrun and resolution).
	poll("a resolved overrun in the history", `document.querySelector('#alerts li[data-kind="resolved"]') ? "yes" : ""`, time.Minute)
	var feed struct {
		Active []string
		At     []int64
		Pairs  int
	}
	eval(`(() => {
		const hist = [...document.querySelectorAll("#alerts li")];
		const keys = hist.map((li) => li.dataset.agent + "@" + li.dataset.start);
		return {
			Active: [...document.querySelectorAll("#active-alerts li .elapsed")].map((e) => e.textContent),
			At: hist.map((li) => Number(li.dataset.at)),
			Pairs: keys.length - new Set(keys).size,
		};
	})()`, &feed)
	for i := 1; i < len(feed.At); i++ {
		if feed.At[i] > feed.At[i-1] {
			t.Errorf("the alert history is not newest first: %v", feed.At)
			break
		}
	}
	for _, e := range feed.Active {
		if !regexp.MustCompile(`^\d+:\d\d$`).MatchString(e) {
			t.Errorf("an open overrun's timer reads %q", e)
		}
	}
	if feed.Pairs != 0 {
		t.Errorf("%d wrap-ups have two lines in the history: an overrun and its resolution are one", feed.Pairs)
	}

	// The centre's figures include the supervisor metrics: average handle
	// time once a handle has completed, occupancy, coded wrap-ups.
	poll("the centre's AHT, occupancy and coded share", `(() => {
		const k = {};
		for (const d of document.querySelectorAll("#center-day .kpi")) k[d.querySelector("span").textContent] = d.querySelector("b").textContent;
		return /^\d+(\.\d)? s$|^\d+m/.test(k["AHT"] || "") && / %$/.test(k["Occupancy"] || "") && (k["Coded"] || "") !== "" ? "yes" : "";
	})()`, time.Minute)

	// The page keeps updating without a reload.
	poll("more updates pushed", fmt.Sprintf(`Number(document.body.dataset.updates) > %d + 3 ? "yes" : ""`, first.Updates), 30*time.Second)
	var marker string
	eval(`window.__loadMarker || ""`, &marker)
	if marker != "same page" {
		t.Fatal("the page reloaded: its window state is gone")
	}

	// Large-screen mode: a button, with its state exposed to assistive tech.
	if err := chromedp.Do(ctx, chromedp.Click("#large")); err != nil {
		t.Fatal(err)
	}
	var large string
	eval(`document.body.classList.contains("large") + "/" + document.getElementById("large").getAttribute("aria-pressed")`, &large)
	if large != "true/true" {
		t.Errorf("large-screen mode after a click: class/aria-pressed = %s, want true/true", large)
	}
	// Really large: the root font scales with the viewport (22 px at 1920
	// wide), the timer is the largest text on a card, and no name is cut
	// off, amber and red cards included.
	var sizes struct {
		Root, Timer, Name float64
		Cut               []string
	}
	eval(`(() => {
		const px = (e) => parseFloat(getComputedStyle(e).fontSize);
		const li = document.querySelector("#agents .agent");
		const cut = [...document.querySelectorAll("#agents .agent .name")].filter((n) => n.scrollWidth > n.clientWidth + 1).map((n) => n.textContent);
		return {Root: px(document.documentElement), Timer: px(li.querySelector(".timer")), Name: px(li.querySelector(".name")), Cut: cut};
	})()`, &sizes)
	if sizes.Root < 21 || sizes.Timer <= sizes.Name || len(sizes.Cut) > 0 {
		t.Errorf("large-screen sizes at 1920x1080: root %.1fpx, timer %.1fpx, name %.1fpx, cut names %v; want the root at 1.15vw (22px), the timer larger than the name, no name cut", sizes.Root, sizes.Timer, sizes.Name, sizes.Cut)
	}
	if err := chromedp.Do(ctx, chromedp.Click("#large")); err != nil {
		t.Fatal(err)
	}

	if path := os.Getenv("ACW_SCREENSHOT"); path != "" {
		// a moment with an amber and a red timer both on the board, if
		// one comes within a minute
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var both bool
			eval(`!!document.querySelector("#agents .agent.warn") && !!document.querySelector("#agents .agent.over")`, &both)
			if both {
				break
			}
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A team's screen: the tiles link to ?team=NAME, which shows that
	// team's agents only.
	var href string
	eval(`(document.querySelector("#teams .tile h3 a") || {}).href || ""`, &href)
	if !strings.Contains(href, "?team=team-") {
		t.Fatalf("a team tile links to %q, want its ?team= screen", href)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"?team=team-2")); err != nil {
		t.Fatal(err)
	}
	poll("team-2's agents alone", `(() => {
		const cards = [...document.querySelectorAll("#agents .agent")];
		return cards.length > 0 && cards.every((li) => li.querySelector(".meta").textContent.startsWith("team-2")) &&
			document.getElementById("agents-h").textContent.includes("team team-2") ? "yes" : "";
	})()`, 30*time.Second)

	stopDemo()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo stopped with %v; log:\n%s", err, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "acwd demo stopped.") {
		t.Errorf("demo did not report a clean stop; output:\n%s", out.String())
	}

	// With its server gone the board must not look live: a full-width
	// banner says since when, and the timers stop.
	poll("the stale banner once the server stopped", `(() => {
		const b = document.getElementById("stale");
		return !b.hidden && /^Data stale since \d\d:\d\d:\d\d/.test(b.textContent) && b.getBoundingClientRect().width >= window.innerWidth * 0.95 ? "yes" : "";
	})()`, 15*time.Second)
	var before, after string
	eval(`document.querySelector("#agents .agent .timer").textContent`, &before)
	time.Sleep(2500 * time.Millisecond) // 10 s of the demo's clock at --speed 4
	eval(`document.querySelector("#agents .agent .timer").textContent`, &after)
	if before != after {
		t.Errorf("the timers still run on a stale board: %s, then %s", before, after)
	}
}

// TestDemoFromCleanClone runs the README's Quick start command, `go run
// ./cmd/acwd demo`, in a fresh clone of this repository's committed HEAD:
// it must build from committed files alone, serve the wallboard with live
// agents, and stop with status 0 on Ctrl-C.
func TestDemoFromCleanClone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module from a clone")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git work tree (%v)", err)
	}
	dir := t.TempDir()
	if out, err := exec.Command("git", "clone", "--quiet", "--no-hardlinks", strings.TrimSpace(string(top)), dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "run", "./cmd/acwd", "demo", "--http", "127.0.0.1:0", "--speed", "10")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errOut lineBuffer
	cmd.Stderr = &errOut
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.Write(append(sc.Bytes(), '\n'))
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	defer func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	url := waitWallboard(t, &out, 5*time.Minute)

	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Agents []struct {
				State string `json:"state"`
			} `json:"agents"`
		}
		if resp, err := http.Get(url + "api/state"); err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if len(st.Agents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agents on the wallboard 30s after it started; log:\n%s", errOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("live wrap-up board")) {
		t.Fatalf("GET / did not serve the wallboard page: %.200s", page)
	}

	// Ctrl-C reaches the whole process group, as in a terminal. The go
	// command itself then exits 1 whatever the program does (its build
	// workers record the interrupt), so the program's clean stop is read
	// from its output: the stop message and no error.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not stop within 30s of Ctrl-C; log:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "acwd demo stopped.") || strings.Contains(errOut.String(), "acwd demo:") {
		t.Errorf("demo did not stop cleanly; output:\n%s\nlog:\n%s", out.String(), errOut.String())
	}
}
