package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"strings"
)

// securityHeaders are set on every HTTP answer: the wallboard loads only
// its own script, styles and connections (no inline script, so an
// injected string cannot run), is never framed, and sends no referrer.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":     "nosniff",
	"Referrer-Policy":            "no-referrer",
	"X-Frame-Options":            "DENY",
	"Cross-Origin-Opener-Policy": "same-origin",
}

// httpAccess is the optional access control of acwd's HTTP surface: a
// bearer token (for API clients) and basic-auth credentials (for
// browsers: EventSource sends them with the page's requests). With
// neither set everything is open. The probe and scrape paths stay open
// unless protectOps is set, as Prometheus and Kubernetes expect.
type httpAccess struct {
	token, user, password string
	protectOps            bool
}

func (a httpAccess) enabled() bool { return a.token != "" || a.user != "" }

// opsPaths are the probe and scrape endpoints.
var opsPaths = map[string]bool{"/metrics": true, "/healthz": true, "/readyz": true}

// equal compares secrets in constant time (of their hashes, so that not
// even the length leaks).
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func (a httpAccess) allowed(r *http.Request) bool {
	if !a.enabled() || (opsPaths[r.URL.Path] && !a.protectOps) {
		return true
	}
	if a.token != "" {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(t, a.token) {
			return true
		}
	}
	if a.user != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, a.user) && equal(p, a.password) {
			return true
		}
	}
	return false
}

// guard wraps h with the security headers and the access control.
func guard(h http.Handler, a httpAccess) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if !a.allowed(r) {
			if a.user != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="acwstream", charset="UTF-8"`)
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// withPprof serves net/http/pprof's handlers at /debug/pprof/ and the
// rest with h. Its command line has the values of secret flags masked.
func withPprof(h http.Handler, secretFlags []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(strings.Join(maskArgs(os.Args, secretFlags), "\x00")))
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// maskArgs returns args with the value of each of the flags (given as
// --flag V or --flag=V, one dash or two) masked, and passwords in URLs.
func maskArgs(args, flags []string) []string {
	out := make([]string, len(args))
	next := false
	for i, a := range args {
		switch {
		case next:
			out[i], next = "***", false
			continue
		case strings.HasPrefix(a, "-"):
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			for _, f := range flags {
				if name == f {
					if hasValue {
						a = a[:strings.IndexByte(a, '=')+1] + "***"
					} else {
						next = true
					}
				}
			}
		}
		out[i] = maskURLText(a)
	}
	return out
}

var urlCredentials = regexp.MustCompile(`(://[^/@\s:]*:)[^@\s]*@`)

// maskURLText hides the password of every URL in s, even one that does
// not parse.
func maskURLText(s string) string { return urlCredentials.ReplaceAllString(s, "${1}***@") }
