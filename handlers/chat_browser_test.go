package handlers_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"silo/testrig"
	"silo/testrig/datasets"
)

// TestBrowserChat asks a question on a document's page in Chromium: the
// answer streams in token by token, ends with its sources, a source shows
// its page, the conversation is there after a reload, and the stop button
// keeps what was written.
func TestBrowserChat(t *testing.T) {
	t.Parallel()
	fake := testrig.NewFakeLLM(t)
	answer := "The city lies on the **St. Johns River** [p. 2], the longest river in Florida."
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words(answer), TokenDelay: 120 * time.Millisecond}) // about 2 s of partial answer to see
	srv, _, id := llmServer(t, fake, nil)
	c := newChrome(t, srv)
	c.signIn("reader@example.com")
	c.open("/documents/" + id)
	c.waitFor("the chat form", `!!document.querySelector("#ask textarea")`)

	c.step("ask", chromedp.SendKeys(chromedp.CSS("#question"), chatQuestion), chromedp.Click(chromedp.CSS(`#ask button[type="submit"]`)))
	// Tokens arrive one by one: some text shows before the answer is done.
	c.waitFor("part of the answer", `(() => { const s = document.querySelector(".msg-assistant .streaming");
		return !!s && s.textContent.length > 0 && s.textContent.length < `+strconv.Itoa(len(answer))+` })()`)
	c.waitFor("the finished answer", `!!document.querySelector(".msg-assistant .sources")`)
	if got := c.textOf(".msg-assistant .msg-body"); !strings.Contains(got, "St. Johns River") || strings.Contains(got, "**") {
		t.Errorf("the answer reads %q, want the markdown rendered", got)
	}
	if got := c.textOf(".msg-user"); got != chatQuestion {
		t.Errorf("the question reads %q", got)
	}
	if v, _ := eval[string](c, `document.querySelector("#question").value`); v != "" {
		t.Errorf("the question box still holds %q", v)
	}
	if !strings.Contains(c.location(), "?c=") {
		t.Errorf("the address %s does not name the conversation", c.location())
	}

	// A source shows its page, opened from the keyboard: the pages pane
	// scrolls, not the window, and the source keeps the focus.
	before, err := eval[float64](c, `document.querySelector(".sources a.cite").focus({preventScroll: true}); scrollY`)
	if err != nil {
		t.Fatal(err)
	}
	c.step("open a source with Enter", chromedp.KeyEvent(kb.Enter))
	c.waitFor("the cited page", `location.hash.startsWith("#page-") && !!document.querySelector(location.hash + ".current img")`)
	if after, _ := eval[float64](c, "scrollY"); after != before {
		t.Errorf("opening a source scrolled the window from %v to %v", before, after)
	}
	if ok, _ := eval[bool](c, `document.activeElement.matches(".sources a.cite")`); !ok {
		t.Error("opening a source moved the focus away from it")
	}
	c.waitFor("the page image", `(() => { const img = document.querySelector(location.hash + " img"); return img.complete && img.naturalWidth > 0 })()`)
	// with its snippet highlighted: boxes over the image, inside the figure.
	c.waitFor("the snippet highlighted", `(() => { const hl = document.querySelectorAll(location.hash + " .hl-layer .hl");
		if (hl.length === 0) return false;
		const img = document.querySelector(location.hash + " img").getBoundingClientRect();
		return [...hl].every(b => { const r = b.getBoundingClientRect();
			return r.width > 0 && r.height > 0 && r.left >= img.left - 1 && r.right <= img.right + 1 && r.top >= img.top - 1 && r.bottom <= img.bottom + 1 }) })()`)
	// and scrolled into the pages' view, wherever on its page it lies.
	c.waitFor("the snippet in view", `(() => { const hl = document.querySelector(location.hash + " .hl-layer .hl");
		const r = hl.getBoundingClientRect(), pane = document.querySelector("#pages").getBoundingClientRect();
		return r.top >= pane.top && r.bottom <= pane.bottom })()`)

	// A [p. N] in the answer highlights its page's snippet too.
	if _, err := eval[bool](c, `document.querySelectorAll(".hl-layer").forEach(l => l.remove()); true`); err != nil {
		t.Fatal(err)
	}
	c.step("open the answer's [p. 2]", chromedp.Click(chromedp.CSS(`.msg-assistant .msg-body a[href="#page-2"]`)))
	c.waitFor("page 2's snippet highlighted", `document.querySelectorAll("#page-2 .hl-layer .hl").length > 0`)

	// After a reload, the conversation is still there.
	c.open(c.location())
	c.waitFor("the saved conversation", `document.querySelectorAll(".msg").length === 2 && !!document.querySelector(".msg-assistant .sources")`)

	// Stop: a slow answer stopped half-way keeps what came.
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words(strings.Repeat("word ", 300)), TokenDelay: 30 * time.Millisecond})
	c.step("ask again", chromedp.SendKeys(chromedp.CSS("#question"), "And what else?"), chromedp.Click(chromedp.CSS(`#ask button[type="submit"]`)))
	c.waitFor("the second answer streaming", `(() => { const s = document.querySelectorAll(".msg-assistant .streaming"); return s.length === 1 && s[0].textContent.length > 10 })()`)
	c.step("stop", chromedp.Click(chromedp.CSS(".msg-assistant .stop")))
	c.waitFor("the stopped answer", `[...document.querySelectorAll(".msg-assistant")].pop().innerText.includes("You stopped this answer")`)
	c.wantNoProblems("chatting")

}

// TestBrowserAskYourDocuments asks two questions of all of a person's
// documents in Chromium, from the documents page: each answer's sources
// name their documents, one from each; a source opens its document's page
// there with the snippet highlighted. The page fits a phone's width.
func TestBrowserAskYourDocuments(t *testing.T) {
	t.Parallel()
	srv, a, jax := chatServer(t, nil)
	oil := uploadPDF(t, srv, a, "1973-oil-crisis.pdf", datasets.Read(t, "squad-pdfs", "1973-oil-crisis.pdf"))
	if d := waitDoc(t, srv, a, oil, chatWait); d.Status != "ready" {
		t.Fatalf("1973-oil-crisis.pdf ended %s: %s", d.Status, d.Error)
	}
	c := newChrome(t, srv)
	c.signIn("reader@example.com")
	c.step("open Ask your documents", chromedp.Click(chromedp.CSS(`a[href="/ask"]`)))
	c.waitFor("Ask your documents", `location.pathname === "/ask" && !!document.querySelector("#ask textarea")`)

	askQuestion := func(question string, answers int) {
		c.step("ask "+question, chromedp.SendKeys(chromedp.CSS("#question"), question), chromedp.Click(chromedp.CSS(`#ask button[type="submit"]`)))
		c.waitFor("the answer to "+question, `document.querySelectorAll(".msg-assistant .sources").length === `+strconv.Itoa(answers))
	}
	askQuestion("When did the 1973 oil crisis begin?", 1)
	// Asked, the conversation says what it asks instead of offering a choice.
	c.waitFor("what the conversation asks", `!document.querySelector('input[name="scope"]') && document.querySelector("#pick").innerText === "Asking all your documents"`)
	askQuestion(chatQuestion, 2)
	sources := func(answer int) string {
		return c.textOf(fmt.Sprintf(".msg-assistant:nth-of-type(%d) .sources", 2*answer))
	}
	if got := sources(1); !strings.Contains(got, "1973-oil-crisis, p. ") {
		t.Errorf("the first answer's sources read %q, want the oil crisis's pages named", got)
	}
	if got := sources(2); !strings.Contains(got, "jacksonville-florida, p. ") {
		t.Errorf("the second answer's sources read %q, want Jacksonville's pages named", got)
	}
	c.screenshot("conversation", 1280)
	c.screenshot("conversation", 390)
	c.step("back to a desktop", chromedp.EmulateViewport(1280, 900))

	// A source opens its document's page at it, highlighted.
	source := `.msg-assistant:nth-of-type(4) .sources a.cite[href^="/documents/` + jax + `?hl="]`
	c.step("open a source", chromedp.Click(chromedp.CSS(source)))
	c.waitFor("the document's page", `location.pathname === "/documents/`+jax+`" && location.hash.startsWith("#page-")`)
	c.waitFor("the snippet highlighted", `(() => { const hl = document.querySelectorAll(location.hash + " .hl-layer .hl");
		if (hl.length === 0) return false;
		const pane = document.querySelector("#pages").getBoundingClientRect(), r = hl[0].getBoundingClientRect();
		return r.width > 0 && r.height > 0 && r.top >= pane.top && r.bottom <= pane.bottom })()`)
	c.screenshot("source", 1280)
	c.wantNoProblems("asking across documents")
}
