package console

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(Assets, name)
	if err != nil {
		t.Fatalf("Assets lacks %s: %v", name, err)
	}
	return string(b)
}

// The pages live under a strict Content-Security-Policy (script-src 'self',
// style-src 'self', no 'unsafe-inline', no 'unsafe-eval'): what the policy
// would block must not be in them at all, so that nothing depends on it.
func TestAssets_NothingTheCSPBlocks(t *testing.T) {
	html := read(t, "index.html")
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]+</script>`),                      // inline script
		regexp.MustCompile(`(?i)<script(?:(?:\s(?:type|async|defer)(?:="[^"]*")?))*\s*>`), // a script without src
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`), // anything from elsewhere
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("index.html has %q, which the console's CSP forbids", m)
		}
	}
	js := read(t, "app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"setAttribute('style'", `setAttribute("style"`, "setTimeout('", `setTimeout("`, "http://", "https://", "import("} {
		if strings.Contains(codeOnly(js), bad) {
			t.Errorf("app.js uses %q: user text goes in with textContent only, and nothing is evaluated", bad)
		}
	}
	css := read(t, "app.css")
	for _, bad := range []string{"@import", "url(http", "url(//", "expression("} {
		if strings.Contains(css, bad) {
			t.Errorf("app.css has %q: no external assets", bad)
		}
	}
}

// codeOnly is src without its whole-line // comments (a comment may name
// what the code does not use, and why).
func codeOnly(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "//") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Every file index.html names is embedded.
func TestAssets_IndexNamesOnlyEmbeddedFiles(t *testing.T) {
	html := read(t, "index.html")
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d files, want app.js, app.css and the icon", len(refs))
	}
	for _, r := range refs {
		read(t, r[1])
	}
}
