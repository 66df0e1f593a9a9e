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

	"silo/config"
	"silo/rag"
	"silo/testrig"
	"silo/testrig/datasets"
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
	srv := docServer(t, configure)
	b, a := signedInAccount(t, srv, "reader@example.com")
	b.Ingester = srv.Ingester
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
	var msgs []rag.Message
	for i, content := range turns {
		role := rag.RoleUser
		if i%2 == 1 {
			role = rag.RoleAssistant
		}
		msgs = append(msgs, rag.Message{Role: role, Content: content})
	}
	b, _ := json.Marshal(map[string]any{"messages": msgs})
	return string(b)
}

// apiStream is what an API chat stream said, in order.
type apiStream struct {
	Tokens    []string
	Citations []rag.Citation
	Error     struct{ Kind, Message string }
	Done      struct{ Status, Answerer string }
	Order     []string // event names, consecutive repeats folded
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
			var c struct{ Citations []rag.Citation }
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
	csrf := b.CSRFToken(t, "/documents/"+id)
	h := http.Header{"Hx-Request": {"true"}, "X-Csrf-Token": {csrf}}
	form := url.Values{"question": {question}, "conversation": {conversation}}
	resp, body := send(t, b.Browser, http.MethodPost, b.URL+"/documents/"+id+"/chat", form.Encode(), h)
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
	if push := resp.Header.Get("HX-Push-Url"); push != "/documents/"+id+"?c="+turn.conversation {
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
		Citations        []rag.Citation
	}
	wantJSON(t, resp, body, &got)
	if got.Answerer != "extractive" || !strings.Contains(got.Answer, "St. Johns") || !regexp.MustCompile(`\[p\. \d+\]`).MatchString(got.Answer) {
		t.Errorf("got %s, want an extractive answer quoting the river with its page", body)
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
