package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/torii-idp/torii/login/api"
)

// The API reference page renders in Chromium under its CSP: the stylesheet
// loads and applies, every operation is listed, and the browser reports no
// CSP violation or failed load.
func TestBrowserAPIDocs(t *testing.T) {
	b := newBrowserEnv(t)
	var (
		mu       sync.Mutex
		problems []string
	)
	chromedp.ListenTarget(b.ctx, func(ev any) {
		var text string
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			// Chromium asks for /favicon.ico by itself; Torii has none.
			if (e.Entry.Source == cdplog.SourceSecurity || e.Entry.Level == cdplog.LevelError) && !strings.HasSuffix(e.Entry.URL, "/favicon.ico") {
				text = string(e.Entry.Source) + ": " + e.Entry.Text + " " + e.Entry.URL
			}
		case *runtime.EventExceptionThrown:
			text = "exception: " + e.ExceptionDetails.Text
		}
		if text != "" {
			mu.Lock()
			problems = append(problems, text)
			mu.Unlock()
		}
	})
	b.run(cdplog.Enable(), chromedp.Navigate(b.issuer+api.DocsPath))
	b.expectPage("API reference")
	b.shot("api-docs")

	var bg string
	if err := b.eval(`getComputedStyle(document.querySelector(".method.m-post")).backgroundColor`, &bg); err != nil || bg != "rgb(21, 128, 61)" {
		t.Errorf("a POST badge's background is %q (%v), want the stylesheet's rgb(21, 128, 61)", bg, err)
	}
	var listed int
	if err := b.eval(`document.querySelectorAll("article.operation").length`, &listed); err != nil {
		t.Fatal(err)
	}
	doc := loadOpenAPI(t)
	want := 0
	for _, item := range doc.Paths.Map() {
		want += len(item.Operations())
	}
	if listed != want {
		t.Errorf("the page lists %d operations, want %d", listed, want)
	}
	time.Sleep(200 * time.Millisecond) // let late console entries arrive
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("Chromium reported on %s:\n%s", api.DocsPath, strings.Join(problems, "\n"))
	}
}
