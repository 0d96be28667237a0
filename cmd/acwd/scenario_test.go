package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of scenario files (review the diff!)")

// scenario is one testdata/scenarios/*.txt file:
//
//	# what it shows
//	args: --warn 20s          (optional: replay flags)
//	types: segment alert      (optional: compare only these record types)
//	--- input
//	…JSON Lines given to acwd replay on stdin…
//	--- output
//	…the expected records…
type scenario struct {
	header []string
	args   []string
	types  map[string]bool
	input  string
	output string
}

func parseScenario(t *testing.T, path string) scenario {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	head, rest, ok := strings.Cut(text, "--- input\n")
	if !ok {
		t.Fatalf("%s: no '--- input' section", path)
	}
	in, out, ok := strings.Cut(rest, "--- output\n")
	if !ok {
		t.Fatalf("%s: no '--- output' section", path)
	}
	sc := scenario{input: in, output: out}
	for _, line := range strings.Split(strings.TrimRight(head, "\n"), "\n") {
		sc.header = append(sc.header, line)
		switch {
		case strings.HasPrefix(line, "args:"):
			sc.args = strings.Fields(strings.TrimPrefix(line, "args:"))
		case strings.HasPrefix(line, "types:"):
			sc.types = map[string]bool{}
			for _, ty := range strings.Fields(strings.TrimPrefix(line, "types:")) {
				sc.types[ty] = true
			}
		}
	}
	return sc
}

func (sc scenario) keep(line string) bool {
	if sc.types == nil {
		return true
	}
	for ty := range sc.types {
		if strings.HasPrefix(line, `{"type":"`+ty+`"`) {
			return true
		}
	}
	return false
}

func TestReplayScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.txt")
	if len(files) == 0 {
		t.Fatal("no scenario files")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			sc := parseScenario(t, path)
			var stdout, stderr bytes.Buffer
			args := append([]string{"replay"}, sc.args...)
			if code := mainExit(context.Background(), args, strings.NewReader(sc.input), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var got []string
			for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
				if sc.keep(line) {
					got = append(got, line)
				}
			}
			gotText := strings.Join(got, "\n") + "\n"
			if *update {
				text := strings.Join(sc.header, "\n") + "\n--- input\n" + sc.input + "--- output\n" + gotText
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if gotText != sc.output {
				want := strings.Split(strings.TrimRight(sc.output, "\n"), "\n")
				for i := 0; i < max(len(got), len(want)); i++ {
					g, w := "<none>", "<none>"
					if i < len(got) {
						g = got[i]
					}
					if i < len(want) {
						w = want[i]
					}
					if g != w {
						t.Fatalf("record %d differs:\n got %s\nwant %s", i+1, g, w)
					}
				}
			}
		})
	}
}
