package console

import (
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// The embedded UI's static rules (the browser tests in tests/console run
// it; these catch a broken tree without a browser): every file that
// index.html and the modules name is in Assets(); nothing is loaded from
// elsewhere; no inline script, style attribute or HTML parsing of text,
// which the Content-Security-Policy or the UI's own rule forbid.

var (
	htmlRef   = regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	moduleRef = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*\s+from\s+)?'([^']+)'`)
)

func TestAssetsReferencesResolve(t *testing.T) {
	a := Assets()
	index, err := fs.ReadFile(a, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	refs := 0
	for _, m := range htmlRef.FindAllStringSubmatch(string(index), -1) {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "#"), ref == "data:,":
			continue
		case strings.Contains(ref, "//"), strings.HasPrefix(ref, "http"):
			t.Errorf("index.html loads %q from elsewhere", ref)
			continue
		}
		refs++
		if _, err := fs.Stat(a, strings.TrimPrefix(ref, "/")); err != nil {
			t.Errorf("index.html names %q: %v", ref, err)
		}
	}
	if refs < 4 {
		t.Errorf("index.html names %d files, want at least the two style sheets and two scripts", refs)
	}

	mods, err := fs.Glob(a, "js/*.js")
	if err != nil || len(mods) == 0 {
		t.Fatalf("no modules under js/: %v", err)
	}
	for _, mod := range mods {
		src, err := fs.ReadFile(a, mod)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range moduleRef.FindAllStringSubmatch(string(src), -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q: only the UI's own modules", mod, m[1])
				continue
			}
			if _, err := fs.Stat(a, path.Join(path.Dir(mod), m[1])); err != nil {
				t.Errorf("%s imports %q: %v", mod, m[1], err)
			}
		}
	}
}

func TestAssetsNoInlineCode(t *testing.T) {
	a := Assets()
	index, err := fs.ReadFile(a, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	for _, bad := range []string{" style=", "<style", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html has %q: the CSP forbids inline style and script", bad)
		}
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("index.html has an inline script %s", m)
		}
	}
	mods, _ := fs.Glob(a, "js/*.js")
	for _, mod := range mods {
		src, _ := fs.ReadFile(a, mod)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s: text goes in through textContent, looks through classes", mod, bad)
			}
		}
	}
}

func TestAssetsVendoredUPlot(t *testing.T) {
	a := Assets()
	for _, f := range []string{"vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE"} {
		b, err := fs.ReadFile(a, f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if f == "vendor/uplot/uPlot.iife.min.js" && !strings.Contains(string(b[:min(len(b), 200)]), "v1.6.32") {
			t.Errorf("%s is not uPlot 1.6.32 (scripts/vendor-uplot.sh)", f)
		}
	}
}

// TestAssetsReadsAPIShapes: the UI reads the API's shapes, not the CLI's:
// every snake_case property a module reads (k.shared_with, st.retry_mode)
// is a name openapi.yaml declares. A fallback to a CLI-only name (the
// key list's matched_keys) would hide a break in the API's shape.
func TestAssetsReadsAPIShapes(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*([a-z0-9_]+):`).FindAllStringSubmatch(string(doc), -1) {
		declared[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- name: ([a-z0-9_]+)`).FindAllStringSubmatch(string(doc), -1) {
		declared[m[1]] = true
	}
	a := Assets()
	mods, _ := fs.Glob(a, "js/*.js")
	prop := regexp.MustCompile(`\.([a-z][a-z0-9]*_[a-z0-9_]+)\b`)
	seen := 0
	for _, mod := range mods {
		src, _ := fs.ReadFile(a, mod)
		for _, m := range prop.FindAllStringSubmatch(string(src), -1) {
			seen++
			if !declared[m[1]] {
				t.Errorf("%s reads .%s, which openapi.yaml does not declare", mod, m[1])
			}
		}
	}
	if seen == 0 {
		t.Fatal("no snake_case property read found: the pattern is broken")
	}
}
