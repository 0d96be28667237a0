package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// --pprof adds Go's profiles to the HTTP server and leaves the rest to
// the service's handler.
func TestPprofEndpoint(t *testing.T) {
	srv := httptest.NewServer(withPprof(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "service "+r.URL.Path)
	}), secretFlags))
	defer srv.Close()
	get := func(path string) string {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, res.Status)
		}
		return string(b)
	}
	if b := get("/debug/pprof/"); !strings.Contains(b, "goroutine") {
		t.Fatalf("/debug/pprof/ does not list the profiles:\n%.300s", b)
	}
	if b := get("/debug/pprof/goroutine?debug=1"); !strings.Contains(b, "TestPprofEndpoint") {
		t.Fatalf("the goroutine profile does not show this test:\n%.300s", b)
	}
	if b := get("/metrics"); b != "service /metrics" {
		t.Fatalf("/metrics went to %q, want the service's handler", b)
	}
}
