//go:build e2e

/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// chromium is Debian's package, which make test-e2e installs.
const chromium = "/usr/bin/chromium"

// screenshots are kept for a person to look at.
var screenshots = filepath.Join("..", "..", "bin", "browser")

var _ = Describe("The interactive API documentation, in headless Chromium with no other host reachable", func() {
	var (
		browser context.Context
		mu      sync.Mutex
		seen    []string // every URL the page asked for
		base    string
	)
	BeforeEach(func(ctx SpecContext) {
		base = replicas[0].url()
		opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
			chromedp.ExecPath(chromium),
			chromedp.NoSandbox, // the suite runs as root
			chromedp.WindowSize(1280, 1600),
			// Every name but the replica's address resolves to nothing.
			chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		DeferCleanup(cancelAlloc)
		seen = nil
		record := func(u string) {
			mu.Lock()
			seen = append(seen, u)
			mu.Unlock()
		}
		var cancel context.CancelFunc
		browser, cancel = chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
			switch e := ev.(type) {
			case *network.EventRequestWillBeSent:
				record(e.Request.URL)
			case network.EventRequestWillBeSent:
				record(e.Request.URL)
			}
		}))
		DeferCleanup(cancel)
		// The first Run starts the browser, with no timeout (one would stop the browser).
		Expect(chromedp.Do(browser)).To(Succeed())
		Expect(os.MkdirAll(screenshots, 0o755)).To(Succeed())
	})

	// summaries are the summary of every operation /openapi.json describes under /app.
	summaries := func() []string {
		GinkgoHelper()
		var doc struct {
			Paths map[string]map[string]struct{ Summary string } `json:"paths"`
		}
		Expect(json.Unmarshal([]byte(call(replicas[0], "GET", "/openapi.json", "", "")), &doc)).To(Succeed())
		var out []string
		for path, ops := range doc.Paths {
			if strings.HasPrefix(path, "/app/") {
				for _, op := range ops {
					out = append(out, op.Summary)
				}
			}
		}
		Expect(len(out)).To(BeNumerically(">=", 11))
		return out
	}
	onlyThisServer := func() {
		GinkgoHelper()
		mu.Lock()
		defer mu.Unlock()
		Expect(seen).NotTo(BeEmpty())
		for _, u := range seen {
			Expect(strings.HasPrefix(u, base+"/") || strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "blob:"+base+"/")).
				To(BeTrue(), "the page asked for %s", u)
		}
	}
	// within runs one step within a minute and returns its value.
	within := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, time.Minute)
	}
	evaluate := func(expression string) []string {
		GinkgoHelper()
		ctx, cancel := within(browser)
		defer cancel()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expression))
		Expect(err).NotTo(HaveOccurred())
		return out
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		GinkgoHelper()
		ctx, cancel := within(browser)
		defer cancel()
		Expect(chromedp.Do(ctx, steps...)).To(Succeed())
	}
	text := func(sel string) string {
		GinkgoHelper()
		ctx, cancel := within(browser)
		defer cancel()
		out, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		Expect(err).NotTo(HaveOccurred())
		return out
	}
	screenshot := func(name string) {
		GinkgoHelper()
		ctx, cancel := within(browser)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(screenshots, name), png, 0o644)).To(Succeed())
	}

	It("renders every operation at /docs (Swagger UI), and Try it out issues a token", func() {
		do(chromedp.Navigate(base+"/docs"), chromedp.WaitVisible(chromedp.CSS(".opblock-summary-description")))
		rendered := evaluate(`[...document.querySelectorAll('.opblock-summary-description')].map(e => e.textContent)`)
		screenshot("docs.png")
		Expect(rendered).To(ContainElements(summaries()))

		By("Try it out on POST /app/token")
		const op = "#operations-default-post_app_token"
		do(chromedp.Click(chromedp.CSS(op+" .opblock-summary")), chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
			chromedp.Click(chromedp.CSS(op+" .execute")),
			chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table .response .response-col_status")))
		screenshot("docs-try-it-out.png")
		Expect(strings.TrimSpace(text(op + " .live-responses-table .response .response-col_status"))).To(Equal("200"))
		Expect(text(op + " .live-responses-table .response .response-col_description")).To(And(
			ContainSubstring(`"status_code": 200`), MatchRegexp(`"token": "[0-9a-f]{16}:[A-Z2-7]{26}"`)))
		onlyThisServer()
	})

	It("renders every operation at /redoc (ReDoc)", func() {
		do(chromedp.Navigate(base+"/redoc"), chromedp.WaitVisible(chromedp.CSS("[data-section-id]")))
		rendered := strings.Join(evaluate(`[...document.querySelectorAll('h2')].map(e => e.textContent)`), "\n")
		screenshot("redoc.png")
		for _, s := range summaries() {
			Expect(rendered).To(ContainSubstring(s))
		}
		onlyThisServer()
	})
})
