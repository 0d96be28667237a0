package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/acwstream/acwstream/sink/redistest"
	"github.com/acwstream/acwstream/sink/wallboard"
)

// floorNow is the board clock of the busy floor below: 10:05 on a
// Monday, five minutes into an interval.
var floorNow = time.Date(2026, 11, 23, 10, 5, 0, 0, time.UTC).UnixMilli()

// busyFloor writes, by the Redis key contract, a centre of 120 agents at
// a busy moment: 30 in wrap-up (some past warn, some past overrun), 50 on
// a call, the rest ready, not ready or logged out; six teams and four
// queues with figures. Some names are long; some agents have none.
func busyFloor(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	iv := floorNow - floorNow%(15*60*1000)
	for i := range 120 {
		id := fmt.Sprintf("agent-%03d", i)
		team, queue := fmt.Sprintf("team-%d", i%6+1), []string{"sales", "support", "billing", "retention"}[i%4]
		h := map[string]any{"team": team, "queue": queue, "last_acw_ms": 11000 + i*100, "last_acw_overrun": 0, "updated": floorNow}
		switch {
		case i%7 == 3:
			h["name"] = fmt.Sprintf("Maria-Fernanda de los Santos Albuquerque-Pereira %d", i)
		case i%11 != 5:
			h["name"] = fmt.Sprintf("Agent %s %d", []string{"Ana", "Bo", "Chidi", "Dana", "Emeka"}[i%5], i)
		}
		switch {
		case i < 30:
			start := floorNow - int64(2000+i*1300) // 2 s to 40 s: ok, past warn, past overrun
			h["state"], h["since"], h["acw_start"], h["call_id"] = "acw", start, start, fmt.Sprintf("call-%d", i)
			h["segment_id"], h["warn_ms"], h["overrun_ms"] = fmt.Sprintf("%032x", i), 20000, 30000
			pipe.ZAdd(ctx, "acw:open", redis.Z{Score: float64(start), Member: id})
			if floorNow-start > 30000 {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: "acw:alerts", Values: []any{"id", h["segment_id"].(string) + ":overrun", "kind", "overrun",
					"segment_id", h["segment_id"], "agent_id", id, "call_id", h["call_id"], "team", team, "queue", queue,
					"start", start, "at", start + 30000, "threshold_ms", 30000}})
			}
		case i < 80:
			h["state"], h["since"], h["call_id"] = []string{"talking", "talking", "hold", "ringing"}[i%4], floorNow-int64(i*2100), fmt.Sprintf("call-%d", i)
		case i < 105:
			h["state"], h["since"] = "ready", floorNow-int64(i*900)
		case i < 115:
			h["state"], h["since"], h["reason"] = "not_ready", floorNow-int64(i*3000), "Lunch"
		default:
			h["state"], h["since"] = "logged_out", floorNow-3600000
		}
		pipe.HSet(ctx, "acw:agent:"+id, h)
		pipe.ZAdd(ctx, "acw:agents", redis.Z{Score: float64(floorNow), Member: id})
	}
	stats := func(n int) map[string]any {
		return map[string]any{"calls_handled": 40 + n*7, "acw_count": 38 + n*7, "acw_avg_ms": 17300 + n*900, "acw_pct_of_work": fmt.Sprintf("%.2f", 13.5+float64(n)),
			"aht_ms": 301000 + n*4000, "handle_count": 40 + n*7, "occupancy_pct": "86.40", "acw_coded_pct": "97.30", "overrun_count": n}
	}
	day := time.UnixMilli(floorNow).UTC().Format("2006-01-02")
	for n, k := range []string{"team:team-1", "team:team-2", "team:team-3", "team:team-4", "team:team-5", "team:team-6",
		"queue:sales", "queue:support", "queue:billing", "queue:retention", "center:all"} {
		pipe.HSet(ctx, fmt.Sprintf("acw:%s:15m:%d", k, iv), stats(n%6))
		pipe.HSet(ctx, fmt.Sprintf("acw:%s:day:%s", k, day), stats(n%6+20))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLargeScreenFitsTheFloor opens the wallboard of a busy floor (120
// agents, 80 of them in wrap-up or on a call) in headless Chromium in
// large-screen mode. At 1920×1080 the page does not scroll and every
// agent in wrap-up or on a call is on the screen, wrap-ups first, the
// cards shrunk to fit and the rest left out with a line saying how many;
// the timer is a card's largest text and no name is cut, on amber and red
// cards too; the teams' lines are on the screen. At 3840×2160 the same
// board fills the screen at twice the size. At 1600×1000, not large, the
// team and queue tiles are above the fold. With ACW_SCREENSHOT_DIR set it
// writes the three screenshots the README links.
func TestLargeScreenFitsTheFloor(t *testing.T) {
	bin := chromium(t)
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	busyFloor(t, rdb)
	// Rate 1e-9: the browsers' timers stand still, so what fits does not
	// change while the test looks.
	b, err := wallboard.New(wallboard.Config{Redis: rdb, Now: func() int64 { return floorNow }, Rate: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	bctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(bctx); close(done) }()
	hs := httptest.NewServer(b.Handler())
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); stop(); <-done })

	ctx, eval := openBrowser(t, bin, 2*time.Minute, nil)
	// show loads url at w×h and waits for every agent and the tiles.
	show := func(url string, w, h int64) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h), chromedp.Navigate(url)); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var n int
			eval(`document.querySelectorAll("#agents .agent").length + document.querySelectorAll("#teams .tile").length`, &n)
			if n == 120+6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s at %dx%d: %d agent cards and team tiles, want 126", url, w, h, n)
			}
		}
		time.Sleep(300 * time.Millisecond) // one more push, and its layout
	}
	shot := func(name string) {
		t.Helper()
		dir := os.Getenv("ACW_SCREENSHOT_DIR")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type fit struct {
		Root, Timer, Name, Scale, GridWidth float64
		Scrolls                             bool
		Active, ActiveShown, Paged          int
		Order                               string
		Cut, Off                            []string
		More                                string
		TeamsOnScreen                       int
	}
	measure := func() fit {
		var f fit
		eval(`(() => {
			const px = (e) => parseFloat(getComputedStyle(e).fontSize);
			const H = window.innerHeight, W = window.innerWidth;
			const cards = [...document.querySelectorAll("#agents .agent")];
			const shown = (li) => getComputedStyle(li).display !== "none";
			const on = (e) => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= H + 0.5 && r.left >= 0 && r.right <= W + 0.5; };
			const active = cards.filter((li) => ["acw", "talking", "hold", "ringing"].includes(li.dataset.state));
			const li = cards.find((li) => li.dataset.state === "acw");
			const sc = document.scrollingElement;
			return {
				Root: px(document.documentElement), Timer: px(li.querySelector(".timer")), Name: px(li.querySelector(".name")),
				Scale: parseFloat(getComputedStyle(document.getElementById("agents")).getPropertyValue("--s") || "1"),
				GridWidth: document.getElementById("agents").getBoundingClientRect().width,
				Scrolls: sc.scrollHeight > H + 1 || sc.scrollWidth > W + 1,
				Active: active.length, ActiveShown: active.filter((li) => shown(li) && on(li)).length,
				Paged: cards.filter((li) => li.classList.contains("paged")).length,
				Order: cards.filter(shown).map((li) => li.dataset.state === "acw" ? "w" : "o").join("").replace(/(.)\1+/g, "$1"),
				Cut: cards.filter(shown).map((li) => li.querySelector(".name")).filter((n) => n.scrollWidth > n.clientWidth + 1).map((n) => n.textContent),
				Off: cards.filter(shown).filter((li) => { const n = li.querySelector(".name").getBoundingClientRect(), c = li.getBoundingClientRect();
					return n.right > c.right + 0.5 || n.bottom > c.bottom + 0.5; }).map((li) => li.dataset.agent + "/" + li.className),
				More: document.getElementById("agents-more").textContent,
				TeamsOnScreen: [...document.querySelectorAll("#teams .tile")].filter(on).length,
			};
		})()`, &f)
		return f
	}
	check := func(size string, f fit, root float64) {
		t.Helper()
		if f.Root < root-1 || f.Root > root+1 {
			t.Errorf("%s: root font %.1fpx, want %.0fpx (1.15vw)", size, f.Root, root)
		}
		if f.Scrolls {
			t.Errorf("%s: the page scrolls; a wall board is one screen", size)
		}
		if f.Active != 80 || f.ActiveShown != f.Active {
			t.Errorf("%s: %d of the %d agents in wrap-up or on a call are on the screen, want all of 80", size, f.ActiveShown, f.Active)
		}
		if f.Order != "wo" {
			t.Errorf("%s: card order by wrap-up (w) and the rest (o) is %q, want wrap-ups first", size, f.Order)
		}
		if f.Timer <= f.Name {
			t.Errorf("%s: timer %.1fpx, name %.1fpx: the timer must be a card's largest text", size, f.Timer, f.Name)
		}
		if len(f.Cut) > 0 || len(f.Off) > 0 {
			t.Errorf("%s: names cut %v, names out of their card %v", size, f.Cut, f.Off)
		}
		if (f.Paged > 0) != strings.HasPrefix(f.More, fmt.Sprintf("+%d more not shown: ", f.Paged)) {
			t.Errorf("%s: %d cards left out, and the line says %q", size, f.Paged, f.More)
		}
		if f.TeamsOnScreen != 6 {
			t.Errorf("%s: %d of the 6 teams' lines are on the screen", size, f.TeamsOnScreen)
		}
	}

	show(hs.URL+"/?large", 1920, 1080)
	hd := measure()
	check("1920x1080 large", hd, 22)
	if hd.Scale >= 1 || hd.Paged == 0 {
		t.Errorf("1920x1080 large: scale %.2f with %d cards left out: the floor is meant to need both, or this test checks nothing", hd.Scale, hd.Paged)
	}
	var amberRed int
	eval(`document.querySelectorAll("#agents .agent.warn, #agents .agent.over").length`, &amberRed)
	if amberRed < 10 {
		t.Errorf("only %d amber or red cards: the floor has 14 wrap-ups past warn", amberRed)
	}
	shot("wallboard-1920x1080-large.png")

	show(hs.URL+"/?large", 3840, 2160)
	uhd := measure()
	check("3840x2160 large", uhd, 44)
	if uhd.GridWidth < 0.55*3840 || uhd.Scale < hd.Scale {
		t.Errorf("3840x2160 large: the agents take %.0fpx of 3840 at scale %.2f (1080p: %.2f); want the screen filled", uhd.GridWidth, uhd.Scale, hd.Scale)
	}
	shot("wallboard-3840x2160-large.png")

	show(hs.URL+"/", 1600, 1000)
	var desk struct {
		Teams, Queues int
		Overflow      []string
	}
	eval(`(() => {
		const on = (e) => e.getBoundingClientRect().bottom <= window.innerHeight;
		const tiles = [...document.querySelectorAll(".tile")];
		return {Teams: [...document.querySelectorAll("#teams .tile")].filter(on).length, Queues: [...document.querySelectorAll("#queues .tile")].filter(on).length,
			Overflow: tiles.filter((li) => li.querySelector("table").getBoundingClientRect().right > li.getBoundingClientRect().right + 0.5).map((li) => li.dataset.key)};
	})()`, &desk)
	if desk.Teams == 0 || desk.Queues == 0 {
		t.Errorf("1600x1000: %d team tiles and %d queue tiles above the fold; want some of each", desk.Teams, desk.Queues)
	}
	if len(desk.Overflow) > 0 {
		t.Errorf("1600x1000: the figures of %v run out of their tiles", desk.Overflow)
	}
	shot("wallboard-1600x1000.png")
}
