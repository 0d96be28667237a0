package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// Every answer carries the security headers; with a token or credentials
// set, the wallboard and its API need them (compared in constant time)
// while /metrics, /healthz and /readyz stay open unless protected too.
func TestHTTPAnswersCarrySecurityHeadersAndNeedCredentials(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	do := func(h http.Handler, path string, set func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if set != nil {
			set(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	open := guard(inner, httpAccess{})
	w := do(open, "/", nil)
	if w.Code != 200 {
		t.Fatalf("open: %d", w.Code)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}

	locked := guard(inner, httpAccess{token: "s3cret", user: "sup", password: "pw"})
	cases := []struct {
		name, path string
		set        func(*http.Request)
		want       int
	}{
		{"the page without credentials", "/", nil, 401},
		{"the API without credentials", "/api/state", nil, 401},
		{"a wrong token", "/api/state", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"the token", "/api/state", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 200},
		{"wrong basic credentials", "/", func(r *http.Request) { r.SetBasicAuth("sup", "no") }, 401},
		{"basic credentials", "/api/events", func(r *http.Request) { r.SetBasicAuth("sup", "pw") }, 200},
		{"metrics stay open", "/metrics", nil, 200},
		{"readiness stays open", "/readyz", nil, 200},
		{"profiles are not ops paths", "/debug/pprof/", nil, 401},
	}
	for _, c := range cases {
		if w := do(locked, c.path, c.set); w.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.want)
		} else if c.want == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	ops := guard(inner, httpAccess{token: "s3cret", protectOps: true})
	if w := do(ops, "/metrics", nil); w.Code != 401 {
		t.Errorf("protected /metrics: %d", w.Code)
	}
}

// Secrets never reach the output: not in config check, not in the error
// for a URL that does not parse, not in pprof's command line.
func TestSecretsAreNeverPrinted(t *testing.T) {
	const pw = "hunter2-secret"
	var out, errb bytes.Buffer
	code := mainExit(context.Background(), []string{"config", "check", "--redis", "redis://user:" + pw + "@bad host:6379/0"}, nil, &out, &errb)
	if code != 2 || strings.Contains(out.String()+errb.String(), pw) || !strings.Contains(errb.String(), "--redis") {
		t.Errorf("config check of a malformed URL: exit %d, printed the password or no error:\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = mainExit(context.Background(), []string{"config", "check", "--redis", "redis://user:" + pw + "@host:6379/0", "--http-token", pw, "--kafka-sasl", "plain", "--kafka-sasl-user", "u", "--kafka-sasl-password", pw, "--http-user", "u", "--http-password", pw}, nil, &out, &errb)
	if code != 0 || strings.Contains(out.String()+errb.String(), pw) {
		t.Errorf("config check: exit %d, printed a secret:\n%s\n%s", code, out.String(), errb.String())
	}
	args := maskArgs([]string{"acwd", "run", "--redis", "redis://u:" + pw + "@h:1/0", "--kafka-sasl-password=" + pw, "-http-token", pw, "--group", "g"}, secretFlags)
	if j := strings.Join(args, " "); strings.Contains(j, pw) || !strings.Contains(j, "--group g") {
		t.Errorf("masked command line: %s", j)
	}
	saved := os.Args
	defer func() { os.Args = saved }()
	os.Args = append(os.Args[:1:1], "--http-password", pw)
	srv := httptest.NewServer(withPprof(http.NotFoundHandler(), secretFlags))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(b, []byte(pw)) {
		t.Errorf("/debug/pprof/cmdline shows the password: %q", b)
	}
}
