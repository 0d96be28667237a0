package processor

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/acwstream/acwstream"

// TestPureCoreImportsOnlyTheStandardLibrary enforces the architecture:
// events (and its subpackages) import only the standard library and each
// other; package processor imports only the standard library and events
// (its subpackages, the I/O loop, are free). Test files are included.
func TestPureCoreImportsOnlyTheStandardLibrary(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"events", "processor"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "testdata" || dir == "processor" && path != filepath.Join(root, dir) {
				// processor's subpackages (the I/O loop) may use kafka-go and friends
				return filepath.SkipDir
			}
			pkg, err := build.ImportDir(path, 0)
			if err != nil {
				if _, ok := err.(*build.NoGoError); ok {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(root, path)
			check := func(imports []string, test bool) {
				for _, imp := range imports {
					if !strings.Contains(strings.Split(imp, "/")[0], ".") {
						continue // standard library
					}
					ok := strings.HasPrefix(imp, module+"/events")
					if strings.HasPrefix(rel, "events") && !ok {
						t.Errorf("%s imports %s: events may import only the standard library and events", rel, imp)
					}
					if strings.HasPrefix(rel, "processor") && !ok && imp != module+"/processor" {
						t.Errorf("%s imports %s: processor may import only the standard library and events", rel, imp)
					}
					if ok && strings.HasPrefix(imp, module+"/events/sim") && !test && strings.HasPrefix(rel, "processor") {
						t.Errorf("%s imports %s outside tests", rel, imp)
					}
				}
			}
			check(pkg.Imports, false)
			check(append(pkg.TestImports, pkg.XTestImports...), true)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
