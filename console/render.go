package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/evidence"
)

// page is a parsed page template: the layout and the page's content.
type page struct{ t *template.Template }

// layout is what the layout template gets.
type layout struct {
	Title   string
	Section string // the navigation entry to mark current
	User    string // the signed-in token's name; "" on the sign-in page
	CSRF    string // for the sign-out form
	Data    any
}

var funcs = template.FuncMap{
	"when": formatTime,
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"whenPtr": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return formatTime(*t)
	},
	"short":    shortDigest,
	"signedBy": signedBy,
	// abbrev shortens every full sha256 digest in a text (an image
	// reference, a policy message) to its first 12 hex characters.
	"abbrev": func(s string) string { return fullDigest.ReplaceAllString(s, "sha256:$1…") },
	"digestOf": func(image string) string {
		if i := strings.LastIndex(image, "@sha256:"); i >= 0 {
			return image[i+1:]
		}
		return ""
	},
	"artifactURL": func(digest string) string { return "/artifacts/" + url.PathEscape(digest) },
	"envURL":      func(env string) string { return "/environments/" + url.PathEscape(env) },
	"entryURL":    func(i uint64) string { return fmt.Sprintf("/journal/entries/%d", i) },
	"count":       func(m map[string]int, k string) int { return m[k] },
	"json": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"pretty": func(raw []byte) string {
		var buf bytes.Buffer
		if json.Indent(&buf, raw, "", "  ") != nil {
			return string(raw)
		}
		return buf.String()
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b uint64) uint64 { return a - b },
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	// dict passes several values to a nested template: dict "k" v "k2" v2.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

var fullDigest = regexp.MustCompile(`sha256:([0-9a-f]{12})[0-9a-f]{52}`)

// TimeLayout is how the console shows times: UTC, to the second.
const TimeLayout = "2006-01-02 15:04:05 UTC"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		return "sha256:" + h[:12] + "…"
	}
	return d
}

func parsePages() (map[string]*page, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	pages := map[string]*page{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = &page{t: t}
	}
	return pages, nil
}

// render writes a page: rendered to a buffer first, so that a template
// error becomes an error page rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	p, ok := c.pages[name]
	if !ok {
		panic("console: no page " + name)
	}
	l := layout{Title: title, Section: section(r.URL.Path), Data: data}
	if ss := current(r.Context()); ss != nil {
		l.User, l.CSRF = ss.Name, ss.CSRF
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, "layout.html", l); err != nil {
		c.log.Error("console: render page", "page", name, "error", err)
		http.Error(w, "The page could not be rendered; the server log has the details.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func section(p string) string {
	for _, s := range []string{"environments", "artifacts", "decisions", "journal", "downloads"} {
		if strings.HasPrefix(p, "/"+s) {
			return s
		}
	}
	if p == "/" {
		return "environments"
	}
	return ""
}

type errorData struct {
	Status  int
	Message string
}

func (c *Console) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", http.StatusText(status), errorData{Status: status, Message: msg})
}

// fail answers a request that went wrong: a page that says so, and the
// details in the log.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console request failed", "path", r.URL.Path, "error", err)
	c.renderError(w, r, http.StatusInternalServerError, "Vouch could not answer this; the server log has the details.")
}

// signedBy names who signed a verified attestation: the trusted key, or
// the keyless identity and the CI workflow its certificate named.
func signedBy(a evidence.Attestation) string {
	var p struct {
		Signer *struct {
			Subject          string `json:"subject"`
			SourceRepository string `json:"source_repository"`
			SourceCommit     string `json:"source_commit"`
		} `json:"signer"`
	}
	if from, ok := evidence.ReadByVouch(a.KeyID); ok {
		return "read by Vouch from " + from
	}
	if json.Unmarshal(a.Payload, &p) != nil || p.Signer == nil {
		return "key " + a.KeyID
	}
	s := a.KeyID + ", keyless: " + p.Signer.Subject
	if c := p.Signer.SourceCommit; c != "" {
		s += " at " + c[:min(len(c), 12)]
	}
	return s
}
