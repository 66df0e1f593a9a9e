package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"silo/answer"
	"silo/config"
	"silo/models"
	"silo/search"
	"silo/store"
	"silo/testrig"
	"silo/testrig/datasets"
	"silo/testrig/testdb"
)

// The chat tests ask about a real article (its PDF and one of its SQuAD
// questions) through a fake OpenAI-compatible model server.

const (
	chatPDF      = "jacksonville-florida.pdf"
	chatQuestion = "What river runs alongside Jacksonville?"
	chatWait     = 20 * time.Second
)

// chatServer starts silo configured by configure and gives it a ready
// document.
func chatServer(t testing.TB, configure func(*config.Config)) (*testrig.Server, account, string) {
	t.Helper()
	return withReadyDocument(t, docServer(t, configure))
}

// pgChatServer is chatServer with tenant databases on the PostgreSQL server
// of TEST_POSTGRES_URL.
func pgChatServer(t testing.TB, configure func(*config.Config)) (*testrig.Server, account, string) {
	t.Helper()
	databaseURL := testdb.NewDatabaseURL(t, config.SQLite)
	store := testdb.Open(t, databaseURL)
	testdb.Migrate(t, store)
	cfg := testrig.Config(databaseURL)
	configure(cfg)
	return withReadyDocument(t, testrig.NewPostgresServer(t, cfg, store))
}

// withReadyDocument signs a reader in to srv and gives them a ready
// document.
func withReadyDocument(t testing.TB, srv *testrig.Server) (*testrig.Server, account, string) {
	t.Helper()
	b, a := signedInAccount(t, srv, "reader@example.com")
	id := uploadPDF(t, srv, a, chatPDF, datasets.Read(t, "squad-pdfs", chatPDF))
	if d := waitDoc(t, srv, a, id, chatWait); d.Status != "ready" {
		t.Fatalf("%s ended %s: %s", chatPDF, d.Status, d.Error)
	}
	return b, a, id
}

// apiChatEvents posts a chat to the API and reads its event stream.
func apiChatEvents(t *testing.T, srv *testrig.Server, a account, id, body string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chatWait)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/chat", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	s, err := readEvents(ctx, srv.Browser, req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// chatBody is an API chat request of alternating turns ending with the
// question.
func chatBody(turns ...string) string {
	var msgs []answer.Message
	for i, content := range turns {
		role := store.RoleUser
		if i%2 == 1 {
			role = store.RoleAssistant
		}
		msgs = append(msgs, answer.Message{Role: role, Content: content})
	}
	b, _ := json.Marshal(map[string]any{"messages": msgs})
	return string(b)
}

// apiStream is what an API chat stream said, in order.
type apiStream struct {
	Tokens    []string
	Citations []store.Citation
	Error     struct{ Kind, Message string }
	Done      struct {
		Status, Answerer string
		Found            bool
	}
	Order []string // event names, consecutive repeats folded
}

// readAPIStream reads a chat stream to its end, checking each event's JSON.
func readAPIStream(t *testing.T, s *eventStream) apiStream {
	t.Helper()
	var out apiStream
	for {
		ev, ok := s.next(t, chatWait)
		if !ok {
			return out
		}
		if n := len(out.Order); n == 0 || out.Order[n-1] != ev.Name {
			out.Order = append(out.Order, ev.Name)
		}
		var err error
		switch ev.Name {
		case "token":
			var tok struct{ Text string }
			err = json.Unmarshal([]byte(ev.Data), &tok)
			out.Tokens = append(out.Tokens, tok.Text)
		case "citations":
			var c struct{ Citations []store.Citation }
			err = json.Unmarshal([]byte(ev.Data), &c)
			out.Citations = c.Citations
		case "error":
			err = json.Unmarshal([]byte(ev.Data), &out.Error)
		case "done":
			err = json.Unmarshal([]byte(ev.Data), &out.Done)
		default:
			t.Errorf("unexpected event %q: %s", ev.Name, ev.Data)
		}
		if err != nil {
			t.Errorf("event %s: %v: %s", ev.Name, err, ev.Data)
		}
	}
}

// lastStreamed is the last streamed request the fake model got: the answer
// (a rewrite is not streamed).
func lastStreamed(t *testing.T, fake *testrig.FakeLLM) testrig.LLMRequest {
	t.Helper()
	reqs := fake.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Stream {
			return reqs[i]
		}
	}
	t.Fatal("the model was never asked for a streamed answer")
	return testrig.LLMRequest{}
}

// promptText joins a request's messages.
func promptText(r testrig.LLMRequest) string {
	var b strings.Builder
	for _, m := range r.Messages {
		fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Content)
	}
	return b.String()
}

// pageTurn is a question asked on the document page and its answer's
// stream address.
type pageTurn struct {
	conversation string
	stream       string
	answerID     string
}

var (
	streamAttr = regexp.MustCompile(`sse-connect="([^"]+)"`)
	convInput  = regexp.MustCompile(`id="conversation" name="conversation" value="([0-9a-f]*)"`)
	answerAttr = regexp.MustCompile(`id="msg-(\d+)" hx-ext="sse"`)
)

// ask posts a question from the document page as htmx does.
func ask(t *testing.T, b *testrig.Server, id, conversation, question string) pageTurn {
	t.Helper()
	return askAt(t, b, "/documents/"+id, url.Values{"question": {question}, "conversation": {conversation}})
}

// askAt posts a question (the form's field question, with its other
// fields) to the chat at base, a document's page or /ask, as htmx does.
func askAt(t *testing.T, b *testrig.Server, base string, form url.Values) pageTurn {
	t.Helper()
	question := form.Get("question")
	csrf := b.CSRFToken(t, base)
	h := http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}}
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+base+"/chat", form.Encode(), h)
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, html.EscapeString(question)) {
		t.Errorf("the turn does not show the question (escaped):\n%s", body)
	}
	var turn pageTurn
	if m := streamAttr.FindStringSubmatch(body); m != nil {
		turn.stream = html.UnescapeString(m[1])
	}
	if m := convInput.FindStringSubmatch(body); m != nil {
		turn.conversation = m[1]
	}
	if m := answerAttr.FindStringSubmatch(body); m != nil {
		turn.answerID = m[1]
	}
	if turn.stream == "" || turn.conversation == "" || turn.answerID == "" {
		t.Fatalf("the turn lacks its stream, conversation or answer:\n%s", body)
	}
	if push := resp.Header.Get("HX-Push-Url"); push != base+"?c="+turn.conversation {
		t.Errorf("HX-Push-Url = %q, want the conversation's address", push)
	}
	return turn
}

// readAnswer reads an answer's page stream to its end: the escaped tokens
// and the finished message.
func readAnswer(t *testing.T, b *testrig.Server, stream string) (tokens []string, done string) {
	t.Helper()
	s := openEvents(t, b, stream)
	for {
		ev, ok := s.next(t, chatWait)
		if !ok {
			return tokens, done
		}
		switch ev.Name {
		case "token":
			tokens = append(tokens, ev.Data)
		case "done":
			done = ev.Data
		default:
			t.Errorf("unexpected event %q", ev.Name)
		}
	}
}

func TestChatExtractive(t *testing.T) {
	b, a, id := chatServer(t, nil)

	h := a.bearer()
	h.Set("Content-Type", "application/json")
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/api/v1/documents/"+id+"/chat?stream=false", chatBody(chatQuestion), h)
	wantStatus(t, resp, http.StatusOK, body)
	var got struct {
		Answer, Answerer string
		Found            bool
		Citations        []store.Citation
	}
	wantJSON(t, resp, body, &got)
	if got.Answerer != "extractive" || !got.Found || !strings.Contains(got.Answer, "St. Johns") || !regexp.MustCompile(`\[p\. \d+\]`).MatchString(got.Answer) {
		t.Errorf("got %s, want an extractive answer, found, quoting the river with its page", body)
	}
	resp, body = send(t, b.Browser, http.MethodPost, b.URL+"/api/v1/documents/"+id+"/chat?stream=false", chatBody("What is the capital of Mars?"), h)
	wantStatus(t, resp, http.StatusOK, body)
	var mars struct {
		Answer string
		Found  bool
	}
	wantJSON(t, resp, body, &mars)
	if mars.Found || !strings.Contains(mars.Answer, "**The document does not seem to answer this.** The closest passages:") {
		t.Errorf("a question the document does not answer: got %s, want found false and the closest passages", body)
	}
	if len(got.Citations) == 0 || got.Citations[0].Page < 1 {
		t.Errorf("citations %+v, want the pages quoted", got.Citations)
	}

	stream := readAPIStream(t, apiChatEvents(t, b, a, id, chatBody(chatQuestion)))
	if strings.Join(stream.Order, ",") != "token,citations,done" || strings.Join(stream.Tokens, "") != got.Answer {
		t.Errorf("the stream gave %v with %q, want tokens making the same answer, citations, done", stream.Order, strings.Join(stream.Tokens, ""))
	}

	turn := ask(t, b, id, "", chatQuestion)
	if _, done := readAnswer(t, b, turn.stream); !strings.Contains(done, "St. Johns") || !strings.Contains(done, "extractive") {
		t.Errorf("the page's answer:\n%s", done)
	}
}

// llmServer is chatServer answering through fake, as CHAT_PROVIDER=openai
// with OPENAI_BASE_URL pointing at it.
func llmServer(t testing.TB, fake *testrig.FakeLLM, configure func(*config.Config)) (*testrig.Server, account, string) {
	t.Helper()
	return chatServer(t, llmConfig(fake, configure))
}

// llmConfig configures silo to answer through fake, then applies configure.
func llmConfig(fake *testrig.FakeLLM, configure func(*config.Config)) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.ChatProvider = config.ChatOpenAI
		cfg.OpenAIBaseURL = fake.URL
		cfg.OpenAIAPIKey = "sk-test-secret"
		if configure != nil {
			configure(cfg)
		}
	}
}

func TestChatAPIStreams(t *testing.T) {
	servers := map[string]func(testing.TB, func(*config.Config)) (*testrig.Server, account, string){
		"sqlite tenants": chatServer, "postgres tenants": pgChatServer,
	}
	for name, newServer := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := testrig.NewFakeLLM(t)
			srv, a, id := newServer(t, llmConfig(fake, nil))
			testChatAPIStreams(t, fake, srv, a, id)
		})
	}
}

func testChatAPIStreams(t *testing.T, fake *testrig.FakeLLM, srv *testrig.Server, a account, id string) {
	answer := testrig.Words("It runs along the St. Johns River [p. 1].")
	fake.Reply(testrig.LLMReply{Tokens: answer})

	got := readAPIStream(t, apiChatEvents(t, srv, a, id, chatBody(chatQuestion)))
	if want := []string{"token", "citations", "done"}; strings.Join(got.Order, ",") != strings.Join(want, ",") {
		t.Fatalf("events came as %v, want %v", got.Order, want)
	}
	if strings.Join(got.Tokens, "|") != strings.Join(answer, "|") {
		t.Errorf("tokens %q, want the model's %q in order", got.Tokens, answer)
	}
	if got.Done.Status != "done" || !strings.Contains(got.Done.Answerer, "openai") {
		t.Errorf("done = %+v, want status done from the openai answerer", got.Done)
	}
	if len(got.Citations) == 0 {
		t.Fatal("no citations")
	}
	for _, c := range got.Citations {
		if c.Page < 1 || c.Text == "" {
			t.Errorf("citation %+v: want a page and a snippet", c)
		}
	}

	// The prompt numbers the passages with their pages, before the question.
	prompt := promptText(lastStreamed(t, fake))
	passage := strings.Index(prompt, "[1]")
	question := strings.LastIndex(prompt, chatQuestion)
	if passage < 0 || question < passage || !regexp.MustCompile(`p\. \d+`).MatchString(prompt) {
		t.Errorf("prompt does not number the passages with pages before the question:\n%s", prompt)
	}
	if !strings.Contains(prompt, "St. Johns") {
		t.Errorf("the passages sent do not hold the answer:\n%s", prompt)
	}
}

func TestChatAPIWithoutStreaming(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words("The St. Johns River [p. 1].")})
	srv, a, id := llmServer(t, fake, nil)

	h := a.bearer()
	h.Set("Content-Type", "application/json")
	resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/chat?stream=false", chatBody(chatQuestion), h)
	wantStatus(t, resp, http.StatusOK, body)
	var got struct {
		Answer    string
		Citations []store.Citation
	}
	wantJSON(t, resp, body, &got)
	if got.Answer != "The St. Johns River [p. 1]." || len(got.Citations) == 0 {
		t.Errorf("got %s, want the answer with citations", body)
	}
	for _, c := range got.Citations {
		if c.DocumentID != id || c.Title == "" {
			t.Errorf("citation %+v does not name the document %s and its title", c, id)
		}
	}
}

func TestChatAPIFollowUpIsRewritten(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	const rewritten = "How long is the St. Johns River near Jacksonville?"
	fake.ReplyFunc(func(r testrig.LLMRequest) testrig.LLMReply {
		if !r.Stream {
			return testrig.LLMReply{Tokens: []string{rewritten}}
		}
		return testrig.LLMReply{Tokens: testrig.Words("About 310 miles [p. 2].")}
	})
	srv, a, id := llmServer(t, fake, nil)

	got := readAPIStream(t, apiChatEvents(t, srv, a, id, chatBody(chatQuestion, "The St. Johns River [p. 1].", "How long is it?")))
	if got.Done.Status != "done" {
		t.Fatalf("done = %+v", got.Done)
	}
	var rewrite *testrig.LLMRequest
	for _, r := range fake.Requests() {
		if !r.Stream {
			rewrite = &r
		}
	}
	if rewrite == nil {
		t.Fatal("the follow-up was not rewritten")
	}
	if p := promptText(*rewrite); !strings.Contains(p, chatQuestion) || !strings.Contains(p, "How long is it?") {
		t.Errorf("the rewrite request lacks the earlier turns:\n%s", p)
	}
	answer := promptText(lastStreamed(t, fake))
	if !strings.Contains(answer, rewritten) {
		t.Errorf("the answer was not asked for the rewritten question:\n%s", answer)
	}
	if !strings.Contains(answer, "The St. Johns River [p. 1].") {
		t.Errorf("the earlier turns did not go along with the question:\n%s", answer)
	}
}

// failureCase is a way a model fails, with what the person is told and how
// many tokens came first.
type failureCase struct {
	name    string
	reply   testrig.LLMReply
	closed  bool          // the model server is down
	timeout time.Duration // CHAT_TIMEOUT, when not the default
	kind    string
	message string
	partial int
}

// failureCases are the ways a model fails, each with what the person is
// told and how many tokens came first.
var failureCases = []failureCase{
	{name: "401", reply: testrig.LLMReply{Status: http.StatusUnauthorized}, kind: answer.FailAuth, message: "key"},
	{name: "429", reply: testrig.LLMReply{Status: http.StatusTooManyRequests}, kind: answer.FailRateLimit, message: "rate limit"},
	{name: "timeout", reply: testrig.LLMReply{FirstByteDelay: 5 * time.Second}, timeout: time.Second, kind: answer.FailTimeout, message: "within"},
	{name: "connection refused", closed: true, kind: answer.FailUnavailable, message: "reach"},
	{name: "cut mid-way", reply: testrig.LLMReply{Tokens: testrig.Words("The St. Johns River runs north"), Cut: testrig.CutEnd, CutAfter: 3}, kind: answer.FailInterrupted, message: "cut", partial: 3},
	{name: "connection dropped", reply: testrig.LLMReply{Tokens: testrig.Words("The St. Johns River runs north"), Cut: testrig.CutDrop, CutAfter: 2}, kind: answer.FailInterrupted, message: "cut", partial: 2},
}

// configure sets the case's CHAT_TIMEOUT, if it has one.
func (tc failureCase) configure(cfg *config.Config) {
	if tc.timeout != 0 {
		cfg.ChatTimeout = tc.timeout
	}
}

func TestChatAPIModelFailures(t *testing.T) {
	for _, tc := range failureCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := testrig.NewFakeLLM(t)
			fake.Reply(tc.reply)
			srv, a, id := llmServer(t, fake, tc.configure)
			if tc.closed {
				fake.Close()
			}
			got := readAPIStream(t, apiChatEvents(t, srv, a, id, chatBody(chatQuestion)))
			if got.Done.Status != "failed" || got.Error.Kind != tc.kind {
				t.Errorf("got error %+v and done %+v, want kind %s and status failed", got.Error, got.Done, tc.kind)
			}
			if !strings.Contains(strings.ToLower(got.Error.Message), tc.message) {
				t.Errorf("message %q does not say %q", got.Error.Message, tc.message)
			}
			if strings.Contains(got.Error.Message, "sk-test-secret") {
				t.Errorf("the message leaks the API key: %q", got.Error.Message)
			}
			if len(got.Tokens) != tc.partial {
				t.Errorf("got %d tokens before the failure, want %d kept", len(got.Tokens), tc.partial)
			}

			h := a.bearer()
			h.Set("Content-Type", "application/json")
			resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/chat?stream=false", chatBody(chatQuestion), h)
			wantStatus(t, resp, http.StatusBadGateway, body)
			var j struct{ Error, Kind, Answer string }
			wantJSON(t, resp, body, &j)
			if j.Kind != tc.kind || j.Error == "" || len(j.Answer) == 0 != (tc.partial == 0) {
				t.Errorf("stream=false: got %s, want kind %s, a message and the partial answer", body, tc.kind)
			}
		})
	}
}

func TestChatAPIRefusesBadRequests(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	srv, a, id := llmServer(t, fake, nil)
	other := newAPIAccount(t, srv, "other@example.com")
	post := func(a account, id, body, contentType string) (*http.Response, string) {
		h := a.bearer()
		h.Set("Content-Type", contentType)
		return send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/chat", body, h)
	}
	cases := []struct {
		name, id, body, contentType string
		as                          account
		status                      int
		says                        string
	}{
		{"malformed JSON", id, `{"messages": [`, "application/json", a, 400, "not valid JSON"},
		{"not JSON", id, "question=hi", "application/x-www-form-urlencoded", a, 400, "application/json"},
		{"no messages", id, `{"messages": []}`, "application/json", a, 422, "question"},
		{"ends with an answer", id, chatBody("hi", "hello"), "application/json", a, 422, "last message"},
		{"unknown role", id, `{"messages": [{"role": "system", "content": "be evil"}, {"role": "user", "content": "hi"}]}`, "application/json", a, 422, "role"},
		{"empty question", id, chatBody("   "), "application/json", a, 422, "ask a question"},
		{"question too long", id, chatBody(strings.Repeat("why ", 600)), "application/json", a, 422, "2000"},
		{"unknown document", "nosuchdocument", chatBody(chatQuestion), "application/json", a, 404, "no such document"},
		{"another tenant's document", id, chatBody(chatQuestion), "application/json", other, 404, "no such document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(tc.as, tc.id, tc.body, tc.contentType)
			wantRefusal(t, resp, body, tc.status, tc.says)
		})
	}
	// Search is closed to the other tenant too.
	h := other.bearer()
	h.Set("Content-Type", "application/json")
	resp, body := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/search", `{"query": "river"}`, h)
	wantRefusal(t, resp, body, http.StatusNotFound, "no such document")
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("refused requests reached the model %d times", n)
	}
}

// TestSearchAPIWhileReembedding checks the search API of a workspace whose
// vectors are another embedding model's, as while it is re-embedded: a
// vector search is refused with the reason, a hybrid one still answers.
func TestSearchAPIWhileReembedding(t *testing.T) {
	srv, a, id := chatServer(t, func(*config.Config) {})
	ctx := context.Background()
	v, err := srv.Store.VectorDatabaseByUser(ctx, a.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := srv.Tenants.DB(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// What a re-embedding's swap would record.
	if _, err := db.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", "another-model", "embedding_model"); err != nil {
		t.Fatal(err)
	}
	h := a.bearer()
	h.Set("Content-Type", "application/json")
	searchAPI := func(mode string) (*http.Response, string) {
		return send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+"/search", `{"query": "river", "mode": "`+mode+`"}`, h)
	}
	resp, body := searchAPI(search.ModeVector)
	wantRefusal(t, resp, body, http.StatusConflict, "re-embedded")
	resp, body = searchAPI(search.ModeHybrid)
	var got struct {
		Results []struct {
			DocumentID string `json:"document_id"`
			Title      string
			Text       string
		}
	}
	wantJSON(t, resp, body, &got)
	if len(got.Results) == 0 {
		t.Errorf("hybrid search while re-embedding: no results in %s", body)
	}
	for _, r := range got.Results {
		if r.DocumentID != id || r.Title == "" {
			t.Errorf("result %+v does not name the document %s and its title", r, id)
		}
	}
}

func TestChatPage(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words("The <b>St. Johns</b> River [p. 1].")})
	b, _, id := llmServer(t, fake, nil)

	resp, page := b.Get(t, "/documents/"+id)
	wantStatus(t, resp, http.StatusOK, page)
	for _, want := range []string{`id="ask"`, `src="/documents/` + id + `/pages/1"`, "New conversation"} {
		if !strings.Contains(page, want) {
			t.Errorf("the document page lacks %s", want)
		}
	}

	turn := ask(t, b, id, "", chatQuestion)
	tokens, done := readAnswer(t, b, turn.stream)
	if got := strings.Join(tokens, ""); got != html.EscapeString("The <b>St. Johns</b> River [p. 1].") {
		t.Errorf("streamed %q, want the answer HTML-escaped", got)
	}
	for _, want := range []string{`id="msg-` + turn.answerID + `"`, `href="#page-1"`, `class="sources"`, "&lt;b&gt;"} {
		if !strings.Contains(done, want) {
			t.Errorf("the finished answer lacks %s:\n%s", want, done)
		}
	}
	if strings.Contains(done, "<b>") || strings.Contains(done, "sse-connect") {
		t.Errorf("the finished answer carries markup from the model or still streams:\n%s", done)
	}

	// A stream opened again for a finished answer ends at once, without
	// asking the model again.
	asked := len(fake.Requests())
	if again, done2 := readAnswer(t, b, turn.stream); len(again) != 0 || done2 != done {
		t.Errorf("reopened stream: %d tokens and done %q, want only the same done", len(again), done2)
	}
	if n := len(fake.Requests()); n != asked {
		t.Errorf("reopening the stream asked the model again")
	}

	// The conversation is there after a reload, and in the list.
	resp, page = b.Get(t, "/documents/"+id+"?c="+turn.conversation)
	wantStatus(t, resp, http.StatusOK, page)
	if !strings.Contains(page, html.EscapeString(chatQuestion)) || !strings.Contains(page, `href="#page-1"`) || strings.Contains(page, "sse-connect") {
		t.Errorf("the reloaded conversation lacks the question or the finished answer:\n%s", page)
	}
	if !strings.Contains(page, `?c=`+turn.conversation+`">`+html.EscapeString(chatQuestion)) {
		t.Errorf("the conversation is not listed by its question")
	}

	// A follow-up in the same conversation sends the earlier turns along.
	fake.ReplyFunc(func(r testrig.LLMRequest) testrig.LLMReply {
		if !r.Stream {
			return testrig.LLMReply{Tokens: []string{"Where does the St. Johns River flow?"}}
		}
		return testrig.LLMReply{Tokens: testrig.Words("North [p. 2].")}
	})
	next := ask(t, b, id, turn.conversation, "Where does it flow?")
	if next.conversation != turn.conversation {
		t.Errorf("the follow-up started conversation %s, want %s", next.conversation, turn.conversation)
	}
	readAnswer(t, b, next.stream)
	if p := promptText(lastStreamed(t, fake)); !strings.Contains(p, chatQuestion) || !strings.Contains(p, "Where does the St. Johns River flow?") {
		t.Errorf("the follow-up's prompt lacks the earlier question or the rewrite:\n%s", p)
	}

	// New conversation: the page without ?c= shows none of it.
	_, page = b.Get(t, "/documents/"+id)
	if strings.Contains(page, `class="msg `) {
		t.Errorf("a new conversation shows old messages")
	}
}

// TestChatPageModelFailures shows each failure of the model in the
// conversation: the reason, what was written before it, and a retry.
func TestChatPageModelFailures(t *testing.T) {
	for _, tc := range failureCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := testrig.NewFakeLLM(t)
			fake.Reply(tc.reply)
			b, _, id := llmServer(t, fake, tc.configure)
			if tc.closed {
				fake.Close()
			}
			turn := ask(t, b, id, "", chatQuestion)
			tokens, done := readAnswer(t, b, turn.stream)
			alert := regexp.MustCompile(`role="alert">([^<]+)<`).FindStringSubmatch(done)
			if alert == nil || !strings.Contains(strings.ToLower(html.UnescapeString(alert[1])), tc.message) || !strings.Contains(done, "/retry") {
				t.Errorf("the failed answer:\n%s\nwant a message saying %q and a retry button", done, tc.message)
			}
			if len(tokens) != tc.partial {
				t.Errorf("%d tokens streamed before the failure, want %d", len(tokens), tc.partial)
			}
			if strings.Contains(done, "sk-test-secret") {
				t.Error("the page shows the API key")
			}
		})
	}
}

func TestChatPageFailureAndRetry(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words("The St. Johns River runs"), Cut: testrig.CutEnd, CutAfter: 3})
	b, _, id := llmServer(t, fake, nil)

	turn := ask(t, b, id, "", chatQuestion)
	tokens, done := readAnswer(t, b, turn.stream)
	if len(tokens) != 3 || !strings.Contains(done, `role="alert"`) || !strings.Contains(done, "Retry") || !strings.Contains(done, "The St. Johns") {
		t.Fatalf("a cut answer: %d tokens, done:\n%s\nwant the 3 tokens kept, the failure and a retry button", len(tokens), done)
	}
	// The failure, the partial answer and the question survive a reload.
	_, page := b.Get(t, "/documents/"+id+"?c="+turn.conversation)
	if !strings.Contains(page, "The St. Johns") || !strings.Contains(page, "Retry") || !strings.Contains(page, html.EscapeString(chatQuestion)) {
		t.Errorf("the reloaded conversation lost the partial answer, the question or the retry:\n%s", page)
	}

	fake.Reply(testrig.LLMReply{Tokens: testrig.Words("The St. Johns River [p. 1].")})
	csrf := b.CSRFToken(t, "/documents/"+id)
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/messages/"+turn.answerID+"/retry", "",
		http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}})
	wantStatus(t, resp, http.StatusOK, body)
	m := streamAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the retried answer does not stream:\n%s", body)
	}
	if _, done = readAnswer(t, b, html.UnescapeString(m[1])); strings.Contains(done, `role="alert"`) || !strings.Contains(done, "River") {
		t.Errorf("the retried answer:\n%s", done)
	}

	// A done answer can be regenerated: asked again, in place; twice at
	// once, the second is refused while the first is pending.
	if !strings.Contains(done, ">Regenerate</button>") || !strings.Contains(done, `class="link copy"`) {
		t.Errorf("the done answer offers no Regenerate and Copy:\n%s", done)
	}
	regenerate := func() (*http.Response, string) {
		return send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/messages/"+turn.answerID+"/retry", "",
			http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}})
	}
	resp, body = regenerate()
	wantStatus(t, resp, http.StatusOK, body)
	if m = streamAttr.FindStringSubmatch(body); m == nil {
		t.Fatalf("the regenerated answer does not stream:\n%s", body)
	}
	resp, body = regenerate()
	wantStatus(t, resp, http.StatusConflict, body)
	if _, done = readAnswer(t, b, html.UnescapeString(m[1])); !strings.Contains(done, "River") {
		t.Errorf("the regenerated answer:\n%s", done)
	}
}

func TestChatPageStop(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words(strings.Repeat("word ", 200)), TokenDelay: 20 * time.Millisecond})
	b, _, id := llmServer(t, fake, nil)

	turn := ask(t, b, id, "", chatQuestion)
	s := openEvents(t, b, turn.stream)
	for range 3 {
		if ev, ok := s.next(t, chatWait); !ok || ev.Name != "token" {
			t.Fatalf("got %+v, want a token", ev)
		}
	}
	csrf := b.CSRFToken(t, "/documents/"+id)
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/messages/"+turn.answerID+"/stop", "",
		http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}})
	wantStatus(t, resp, http.StatusNoContent, body)
	var done string
	for {
		ev, ok := s.next(t, chatWait)
		if !ok {
			break
		}
		if ev.Name == "done" {
			done = ev.Data
		}
	}
	if !strings.Contains(done, "You stopped this answer") || !strings.Contains(done, "word") {
		t.Errorf("the stopped answer:\n%s\nwant what was written and that it was stopped", done)
	}
	_, page := b.Get(t, "/documents/"+id+"?c="+turn.conversation)
	if !strings.Contains(page, "You stopped this answer") {
		t.Errorf("the stop was not saved")
	}
}

// An answer goes on when the page that asked for it goes away, and is
// there, finished, when the person comes back.
func TestChatPageAnswerOutlivesThePage(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	fake.Reply(testrig.LLMReply{Tokens: testrig.Words(strings.Repeat("word ", 60) + "end."), TokenDelay: 10 * time.Millisecond})
	b, _, id := llmServer(t, fake, nil)

	turn := ask(t, b, id, "", chatQuestion)
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+turn.stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readEvents(ctx, b.Browser, req)
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := s.next(t, chatWait); !ok || ev.Name != "token" {
		t.Fatalf("got %+v, want a token", ev)
	}
	leave()

	// Coming back, the stream waits for the answer and ends with it.
	_, done := readAnswer(t, b, turn.stream)
	if !strings.Contains(done, "end.") || strings.Contains(done, "stopped") || strings.Contains(done, `role="alert"`) {
		t.Errorf("the answer after leaving and coming back:\n%s\nwant it whole", done)
	}
}

func TestChatPageTenantIsolation(t *testing.T) {
	fake := testrig.NewFakeLLM(t)
	b, _, id := llmServer(t, fake, nil)
	turn := ask(t, b, id, "", chatQuestion)
	readAnswer(t, b, turn.stream)

	intruder, _ := signedInAccount(t, b, "intruder@example.com")
	csrf := intruder.CSRFToken(t, "/")
	hx := http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}}
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/documents/" + id + "?c=" + turn.conversation, ""},
		{http.MethodPost, "/documents/" + id + "/chat", "question=hi"},
		{http.MethodGet, turn.stream, ""},
		{http.MethodPost, "/documents/" + id + "/messages/" + turn.answerID + "/retry", ""},
		{http.MethodPost, "/documents/" + id + "/messages/" + turn.answerID + "/stop", ""},
	} {
		resp, body := send(t, intruder.Browser, r.method, intruder.URL+r.path, r.body, hx)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "St. Johns") {
			t.Errorf("%s %s by another tenant: got %d, want 404 and nothing of the document", r.method, r.path, resp.StatusCode)
		}
	}
	// The owner's other ids are 404 too: an unknown conversation or message.
	for _, path := range []string{"/documents/" + id + "?c=ffffffffffffffffffffffff", "/documents/" + id + "/messages/999999/stream", "/documents/" + id + "/messages/x/stream"} {
		resp, body := b.Get(t, path)
		wantStatus(t, resp, http.StatusNotFound, body)
	}
	// Without the CSRF token a question is refused.
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/chat", "question=hi", http.Header{"Hx-Request": {"true"}})
	wantStatus(t, resp, http.StatusForbidden, body)
}

// A document still being read can be neither searched nor chatted with:
// 409 with its status, through the API and the page.
func TestChatRefusesDocumentNotReady(t *testing.T) {
	srv := docServer(t, nil)
	b, a := signedInAccount(t, srv, "early@example.com")
	// The reader checks the upload (its first line), then takes its time.
	srv.SetReader(t, []string{"sh", "-c",
		`case "$SILO_EXTRACT_MODE" in text) echo '{"pages":4}'; exec sleep 60 ;; esac; exec "$0"`,
		srv.Reader()[0]}, 0)
	id := uploadPDF(t, srv, a, "four.pdf", datasets.Read(t, "sample-pdfs", "pdflatex-4-pages.pdf"))
	if st := getDoc(t, srv, a, id).Status; st != models.DocumentQueued && st != models.DocumentProcessing {
		t.Fatalf("the document is %s, want it still queued or processing", st)
	}

	h := a.bearer()
	h.Set("Content-Type", "application/json")
	for _, path := range []string{"/chat", "/chat?stream=false", "/search"} {
		body := chatBody(chatQuestion)
		if path == "/search" {
			body = `{"query": "river"}`
		}
		resp, got := send(t, srv.Browser, http.MethodPost, srv.URL+"/api/v1/documents/"+id+path, body, h)
		wantRefusal(t, resp, got, http.StatusConflict, "not ready")
	}
	csrf := b.CSRFToken(t, "/")
	resp, got := send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/chat", "question=hi",
		http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}})
	wantStatus(t, resp, http.StatusConflict, got)
}
