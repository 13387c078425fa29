package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ScreenshotsEnv names the directory the console's browser tests write
// their screenshots and the printed artifact page to (kept as test
// artifacts); without it they go to a directory under the system's
// temporary directory, which the test log names. VOUCH_SCREENSHOTS=docs/console
// refreshes the documentation's.
const ScreenshotsEnv = "VOUCH_SCREENSHOTS"

// chromium finds the browser the console's tests drive. Its absence fails
// the tests: they are part of `make test` (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("VOUCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is needed for the console's browser tests and was not found: apt-get install chromium (or set VOUCH_CHROMIUM)")
	return ""
}

// tab is one browser tab on the console.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-GB"), chromedp.Env("LANG=en_GB.UTF-8", "LANGUAGE=en_GB"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "vouch-console-screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	tb := &tab{t: t, ctx: ctx, base: base, shots: shots}
	tb.do(chromedp.Navigate("about:blank")) // starts the browser
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

// open navigates to a console path and waits for the page.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// follow clicks what sel selects and waits for the page it leads to.
func (tb *tab) follow(sel string) {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("click %s: %v", sel, err)
	}
	if resp != nil && resp.Status >= 500 {
		tb.t.Fatalf("click %s: the page answered %d", sel, resp.Status)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS("main")))
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) location() string {
	tb.t.Helper()
	u, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatal(err)
	}
	return strings.TrimPrefix(u, tb.base)
}

// wantText fails unless the main content holds every one of want.
func (tb *tab) wantText(want ...string) string {
	tb.t.Helper()
	main := tb.text("main")
	for _, w := range want {
		if !strings.Contains(main, w) {
			tb.t.Errorf("%s: the page does not say %q:\n%s", tb.location(), w, main)
		}
	}
	return main
}

// shot saves a full-page screenshot as name.png.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tb.shots, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// download clicks a download link and returns the file the browser saved.
func (tb *tab) download(sel string) []byte {
	tb.t.Helper()
	dir := tb.t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events}); err != nil {
		tb.t.Fatal(err)
	}
	progress := chromedp.BrowserEvents(tb.ctx, browser.DownloadProgress)
	tb.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	for ev, err := range progress {
		if err != nil {
			tb.t.Fatalf("download %s: %v", sel, err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				tb.t.Fatal(err)
			}
			return b
		case browser.DownloadProgressStateCanceled:
			tb.t.Fatalf("download %s was cancelled", sel)
		}
	}
	return nil
}

// abbrev is how the console shows a digest in a table: its first 12 hex
// characters (the full digest is the element's title).
func abbrev(digest string) string { return digest[:len("sha256:")+12] + "…" }

// seedRelease records two releases of web to prod through the API and the
// webhook, as CI, a release manager, the apiserver and a snapshot reporter
// would; it returns the digests and a moment between the two.
func seedRelease(t *testing.T, v *vouch) (v1, v2 string, between time.Time) {
	t.Helper()
	ci := v.cli("token", "create", "--name", "ci-shop", "--scopes", "evidence:write")
	rm := v.cli("token", "create", "--name", "release-manager", "--scopes", "approvals:write")
	reporter := v.cli("token", "create", "--name", "prod-cluster", "--scopes", "snapshots:write")
	v1, v2 = "sha256:"+strings.Repeat("1a", 32), "sha256:"+strings.Repeat("2b", 32)
	image := func(d string) string { return "registry.example.com/shop/web@" + d }
	build := func(n int, d string) {
		if code, out := v.post(ci, "/api/v1/artifacts", fmt.Sprintf(`{"name":"registry.example.com/shop/web","digest":%q,"git_commit":"%d0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9","repository":"https://git.example.com/shop/web","build_url":"https://ci.example.com/shop/web/builds/%d","author":"dev@example.com"}`, d, n, 400+n)); code != 201 {
			t.Fatalf("report build %d: %d %v", n, code, out)
		}
		if code, out := v.post(ci, "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":true,"url":"https://ci.example.com/shop/web/builds/%d/tests"}`, d, 400+n)); code != 201 {
			t.Fatalf("attest build %d: %d %v", n, code, out)
		}
	}
	approve := func(d, reason string) {
		if code, out := v.post(rm, "/api/v1/approvals", fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":"approved","reason":%q}`, d, reason)); code != 201 {
			t.Fatalf("approve: %d %v", code, out)
		}
	}
	running := func(d string) {
		body := fmt.Sprintf(`{"workloads":[
			{"namespace":"prod","kind":"Deployment","name":"web","pods":3,"containers":[{"name":"c0","image":%q,"digest":%q}]},
			{"namespace":"prod","kind":"Deployment","name":"debug","pods":1,"containers":[{"name":"sh","image":"busybox:1.36","digest":"sha256:%s"}]}]}`,
			image(d), d, strings.Repeat("ee", 32))
		req, _ := http.NewRequest("PUT", "http://"+v.api+"/api/v1/environments/prod/snapshot", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+reporter)
		if code, out := do(t, http.DefaultClient, req); code != 200 {
			t.Fatalf("snapshot: %d %v", code, out)
		}
	}

	build(1, v1)
	approve(v1, "CAB-101: first release")
	if resp := v.admit("uid-web-1", "prod", image(v1)); !resp.Allowed {
		t.Fatalf("v1 denied: %s", resp.Result.Message)
	}
	running(v1)
	// The picker's resolution is a second: leave one whole second between.
	time.Sleep(1100 * time.Millisecond)
	between = time.Now().UTC().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	build(2, v2)
	if resp := v.admit("uid-web-2", "prod", image(v2)); resp.Allowed {
		t.Fatal("v2 admitted without an approval")
	}
	approve(v2, "CAB-102: second release")
	if resp := v.admit("uid-web-3", "prod", image(v2)); !resp.Allowed {
		t.Fatalf("v2 denied after its approval: %s", resp.Result.Message)
	}
	running(v2)
	return v1, v2, between
}

// TestConsoleInBrowser drives the auditor's console in headless Chromium
// against `vouch serve`: sign in, navigate, time travel, compare, filter,
// verify, print and download, and sign out.
func TestConsoleInBrowser(t *testing.T) {
	v := start(t, "", "--checkpoint-interval", "200ms")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")
	ci := v.cli("token", "create", "--name", "ci-other", "--scopes", "evidence:write")
	v1, v2, between := seedRelease(t, v)
	time.Sleep(500 * time.Millisecond) // a checkpoint covers everything

	tb := newTab(t, "http://"+v.api)

	// Not signed in: sent to sign in, and back afterwards.
	tb.open("/environments/prod")
	if loc := tb.location(); loc != "/sign-in?next=%2Fenvironments%2Fprod" {
		t.Fatalf("not signed in, the console shows %s, want the sign-in page", loc)
	}
	tb.do(chromedp.SendKeys(chromedp.ID("token"), ci))
	tb.follow(`form[action="/sign-in"] button[type=submit]`)
	tb.wantText("does not hold the audit:read scope")
	tb.shot("sign-in")
	tb.do(chromedp.SendKeys(chromedp.ID("token"), auditor))
	tb.follow(`form[action="/sign-in"] button[type=submit]`)
	if loc := tb.location(); loc != "/environments/prod" {
		t.Fatalf("after signing in the console shows %s, want /environments/prod", loc)
	}
	if strings.Contains(tb.location(), auditor) {
		t.Fatal("the token is in the URL")
	}
	cookies, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{tb.base + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "vouch_session" {
			session = c
		}
		if strings.Contains(c.Value, auditor) {
			t.Errorf("cookie %s holds the token", c.Name)
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie = %+v, want HttpOnly and SameSite=Strict", session)
	}
	if js, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(js, "vouch_session") {
		t.Errorf("scripts can read the session cookie: %q", js)
	}

	// The overview: prod runs one image nobody built or admitted.
	tb.open("/")
	main := tb.wantText("prod", "build-servers", "no snapshot yet")
	row := tb.text(`tr:has(a[href="/environments/prod"])`)
	// Workloads, failed, undocumented, unknown, non-compliant, compliant:
	// busybox was never admitted (its first problem), web v2 complies.
	if fields := strings.Fields(row); len(fields) != 10 || strings.Join(fields[4:], " ") != "2 0 1 0 0 1" {
		t.Errorf("prod's overview row = %q, want 2 workloads: 1 undocumented, 1 compliant\n%s", row, main)
	}
	tb.shot("overview")

	// Keyboard: the first Tab reaches the skip link, which leads to the content.
	tb.do(chromedp.KeyEvent("\t"))
	if focused, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)); focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}

	// The environment now, then as of the moment between the releases.
	tb.follow(`a[href="/environments/prod"]`)
	tb.wantText("What runs now", "registry.example.com/shop/web@"+abbrev(v2), "busybox:1.36", "unknown", "admitted", "denied", "started", "changed")
	tb.shot("environment")
	tb.do(chromedp.SetValue(chromedp.ID("at"), between.Format("2006-01-02T15:04:05"), chromedp.NodeVisible))
	tb.follow(`form[aria-label="Time travel"] button[type=submit]`)
	state := tb.text(`#workloads tbody`)
	if !strings.Contains(state, "registry.example.com/shop/web@"+abbrev(v1)) || strings.Contains(state, abbrev(v2)) {
		t.Errorf("as of %s, prod ran:\n%s\nwant v1 and not v2", between, state)
	}
	tb.wantText("What ran at " + between.Format("2006-01-02 15:04:05 UTC"))
	if !strings.Contains(tb.location(), "at=") {
		t.Errorf("time travel is not in the URL (%s): it cannot be shared", tb.location())
	}
	tb.shot("environment-as-of")

	// What changed between then and now.
	tb.do(chromedp.SetValue(chromedp.ID("diff-from"), between.Format("2006-01-02T15:04:05"), chromedp.NodeVisible),
		chromedp.SetValue(chromedp.ID("diff-to"), time.Now().UTC().Add(time.Minute).Format("2006-01-02T15:04:05"), chromedp.NodeVisible))
	tb.follow(`#compare + form button[type=submit]`)
	tb.wantText("Changes in prod", "Started (0)", "Stopped (0)", "Changed (1)", "prod/Deployment/web")
	tb.shot("diff")

	// The decisions log, filtered to denials.
	tb.follow(`nav.main a[href="/decisions"]`)
	tb.wantText("Admission decisions", "has no release approval for prod")
	tb.do(chromedp.SetValue(chromedp.ID("f-outcome"), "denied", chromedp.NodeVisible), chromedp.SetValue(chromedp.ID("f-env"), "prod", chromedp.NodeVisible))
	tb.follow(`form[aria-label="Filter decisions"] button[type=submit]`)
	rows := tb.text(`main table tbody`)
	if !strings.Contains(rows, "has no release approval for prod") || strings.Contains(rows, "allowed") || strings.Count(rows, "denied") != 1 {
		t.Errorf("denied decisions in prod:\n%s\nwant the one denial of v2", rows)
	}
	if loc := tb.location(); !strings.Contains(loc, "outcome=denied") || !strings.Contains(loc, "environment=prod") {
		t.Errorf("the filters are not in the URL: %s", loc)
	}
	tb.shot("decisions-denied")

	// Download the filtered decisions as CSV.
	recs, err := csv.NewReader(strings.NewReader(string(tb.download(`a[href^="/decisions/export"][href*="format=csv"]`)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0][0] != "journal_index" || recs[1][3] != "denied" || recs[1][8] != "uid-web-2" {
		t.Errorf("downloaded CSV = %q, want a header and the denial of uid-web-2", recs)
	}

	// The artifact behind the denial: provenance, evidence, where it ran.
	tb.follow(`main table tbody a[href^="/artifacts/"]`)
	if loc := tb.location(); loc != "/artifacts/"+v2 {
		t.Fatalf("the decision's artifact link leads to %s", loc)
	}
	tb.wantText("Provenance", "https://ci.example.com/shop/web/builds/402", "dev@example.com", "unit-tests", "passed", "unsigned",
		"CAB-102: second release", "release-manager", "running now", "still running", "Admission decisions about it")
	tb.shot("artifact")
	pdf, err := chromedp.Run(tb.ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		res, err := chromedp.Call(ctx, page.PrintToPDF, page.PrintToPDFParams{})
		return res.Data, err
	})
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF") {
		t.Fatalf("print the artifact page: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tb.shots, "artifact.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	// Its audit package verifies offline with the CLI.
	pkg := filepath.Join(t.TempDir(), "package.zip")
	if err := os.WriteFile(pkg, tb.download(`a[href$="/audit-package"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := v.cli("journal", "verify-package", "--public-key", v.cli("journal", "key"), pkg); !strings.HasPrefix(out, "OK: 5 entries about sha256:") {
		t.Errorf("vouch journal verify-package = %q, want 5 entries proven (artifact, attestation, approval, two decisions)", out)
	}

	// Printed, the page is the evidence alone: no navigation, forms or buttons.
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"nav.main", "form.search", ".actions", "footer.site"} {
		if display, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('`+sel+`')).display`)); display != "none" {
			t.Errorf("printed, %s is shown (display %q)", sel, display)
		}
	}
	if display, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.print-only')).display`)); display == "none" {
		t.Error("printed, the page does not say where it comes from")
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// Why the release was allowed: the latest decision about it, explained.
	tb.follow(`section[aria-labelledby="decisions"] tbody tr:first-child a[href^="/journal/entries/"]`)
	why := tb.wantText("Admission decision: Allowed: the policy denied nothing", "asked to create Deployment prod/web", "prod required:",
		"a release approval for prod in force", "approved by release-manager", "CAB-102: second release", "built from https://git.example.com/shop/web at commit 2",
		"What the decision had, image by image", "as recorded")
	if strings.Contains(why, "not recorded") || strings.Contains(why, "does not hold everything") {
		t.Errorf("the decision's explanation lacks what it cites:\n%s", why)
	}
	tb.shot("decision")

	// Journal integrity: verify now.
	tb.follow(`nav.main a[href="/journal"]`)
	tb.wantText("Latest signed checkpoint", "vouch journal verify --public-key")
	tb.follow(`form[action="/journal#verify"] button[type=submit]`)
	tb.wantText("Verified:", "signature of the latest checkpoint", "stored tree matches the signed root")
	if strings.Contains(tb.text("main"), "FAILED") {
		t.Errorf("verify-now failed:\n%s", tb.text("main"))
	}
	tb.shot("journal")

	// Sign out: the session is gone.
	tb.follow(`form[action="/sign-out"] button[type=submit]`)
	if loc := tb.location(); !strings.HasPrefix(loc, "/sign-in") {
		t.Errorf("after signing out the console shows %s", loc)
	}
	tb.open("/decisions")
	if loc := tb.location(); !strings.HasPrefix(loc, "/sign-in") {
		t.Errorf("after signing out /decisions shows %s, want the sign-in page", loc)
	}
	if strings.Contains(v.log.String(), auditor) {
		t.Error("the auditor's token is in the server log")
	}
}
