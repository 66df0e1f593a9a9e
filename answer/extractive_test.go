package answer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"silo/answer"
	"silo/search"
	"silo/store"
)

// collect answers req with a and returns the tokens emitted.
func collect(t *testing.T, a answer.Answerer, req answer.Request) []string {
	t.Helper()
	var tokens []string
	if err := a.Answer(context.Background(), req, func(tok string) error {
		tokens = append(tokens, tok)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestExtractiveAnswer(t *testing.T) {
	passages := []search.Result{
		{Page: 3, Text: "The Eiffel Tower is in Paris. It was designed by the engineering company of Gustave Eiffel. Tourists like it."},
		{Page: 4, PageEnd: 5, Text: "The tower was built from 1887 to 1889 as the entrance arch to the World's Fair. It is 330 metres tall."},
		{Page: 9, Text: "Paris has many museums. The Louvre is the largest."},
	}
	tokens := collect(t, answer.NewExtractive(), answer.Request{Question: "When was the Eiffel Tower built?", Passages: passages, Found: true})
	got := strings.Join(tokens, "")
	want := answer.ExtractiveLabel + "\n\n- “The tower was built from 1887 to 1889 as the entrance arch to the World's Fair.” [pp. 4–5]"
	if !strings.HasPrefix(got, want) {
		t.Errorf("got answer %q, want it to start %q", got, want)
	}
	if strings.Contains(got, "Louvre") || strings.Contains(got, "Tourists") {
		t.Errorf("answer %q quotes sentences with no word of the question", got)
	}
	for _, tok := range tokens {
		if w := strings.TrimLeft(tok, " \n"); w == "" || strings.ContainsAny(w, " \n") {
			t.Fatalf("token %q is not one word with the spaces before it", tok)
		}
	}
}

// The sentences are ranked as the search ranks them: a sentence with a
// word like the question's comes first among those that share the rest,
// and so does one with a new number when the question asks for one.
func TestExtractiveAnswerRanksAsSearch(t *testing.T) {
	for _, c := range []struct{ question, want string }{
		{"Which physician saw the king?", "A doctor saw the king at dawn."},
		{"When was the bridge over the river built?", "The bridge over the river was built in 1888."},
	} {
		passages := []search.Result{
			{Page: 1, Text: "A gardener saw the king at noon. The bridge over the river was built by engineers."},
			{Page: 2, Text: "A doctor saw the king at dawn. The bridge over the river was built in 1888."},
		}
		got := strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: c.question, Passages: passages, Found: true}), "")
		if want := answer.ExtractiveLabel + "\n\n- “" + c.want + "”"; !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want it to start %q", c.question, got, want)
		}
	}
}

func TestExtractiveAnswerWholeSentences(t *testing.T) {
	passages := []search.Result{{Page: 2, Text: "Prices of old oil were capped by law. Predictably, old oil was withdrawn from the market. " +
		"In 1973 Nixon named William E. Simon as the first Administrator of the Federal Energy Office."}}
	for _, tc := range []struct{ question, want string }{
		// A sentence that leans on the one before comes with it.
		{"Why was old oil withdrawn from the market?", "“Prices of old oil were capped by law. Predictably, old oil was withdrawn from the market.” [p. 2]"},
		// An initial does not end a sentence.
		{"Who was the first administrator of the Federal Energy Office?", "“In 1973 Nixon named William E. Simon as the first Administrator of the Federal Energy Office.” [p. 2]"},
	} {
		got := strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: tc.question, Passages: passages, Found: true}), "")
		if !strings.Contains(got, "- "+tc.want) {
			t.Errorf("%s: got %q, want it to quote %q", tc.question, got, tc.want)
		}
	}
}

func TestExtractiveAnswerQuotesOnce(t *testing.T) {
	// Overlapping chunks hand on a sentence, or the tail of one.
	passages := []search.Result{
		{Page: 1, Text: "Intro. The dam holds back the Nile river water near Aswan."},
		{Page: 2, Text: "river water near Aswan. The dam was finished in 1970."},
		{Page: 2, Text: "The dam holds back the Nile river water near Aswan. Other text."},
	}
	got := strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: "What does the Aswan dam hold back?", Passages: passages, Found: true}), "")
	if n := strings.Count(got, "near Aswan"); n != 1 {
		t.Errorf("answer %q quotes the sentence %d times, want once", got, n)
	}
}

// Headings and running titles share the topic's words, so they rank; they
// are never quoted, neither as an answer nor as the start of a passage.
func TestExtractiveAnswerQuotesNoHeading(t *testing.T) {
	passages := []search.Result{
		{Page: 4, Text: "University of Notre Dame: part 4\n\nThe university of Notre Dame was founded in 1842 by Edward Sorin."},
		{Page: 2, Text: "University of Notre Dame: part 2\n\nIts campus lies north of South Bend."},
	}
	got := strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: "When was the University of Notre Dame founded?", Passages: passages, Found: true}), "")
	if strings.Contains(got, ": part") {
		t.Errorf("answer %q quotes a running title", got)
	}
	if first := strings.Index(got, "- “"); first < 0 || !strings.HasPrefix(got[first:], "- “The university of Notre Dame was founded in 1842") {
		t.Errorf("answer %q does not quote the founding first", got)
	}
	got = strings.Join(collect(t, answer.NewExtractive(), answer.Request{Question: "What is quantum gravity?", Passages: passages[1:], Found: true}), "")
	if !strings.HasSuffix(got, "the best passage begins:\n\n- “Its campus lies north of South Bend.” [p. 2]") {
		t.Errorf("without a match, answer %q does not begin the passage after its heading", got)
	}
}

// Asked of several documents, the quotes name each one's document.
func TestExtractiveAnswerTitled(t *testing.T) {
	passages := []search.Result{
		{DocumentID: "oil", Title: "1973 oil crisis", Page: 2, Text: "The embargo began in October 1973."},
		{DocumentID: "jax", Title: "Jacksonville", Page: 5, PageEnd: 6, Text: "In Jacksonville the embargo began in October 1973 as well."},
	}
	req := answer.Request{Question: "When did the embargo begin?", Passages: passages, Titled: true, Found: true}
	got := strings.Join(collect(t, answer.NewExtractive(), req), "")
	if !strings.Contains(got, "” [1973 oil crisis, p. 2]") || !strings.Contains(got, "” [Jacksonville, pp. 5–6]") {
		t.Errorf("got %q, want quotes cited as [Title, p. N]", got)
	}
	req.Titled = false
	if got := strings.Join(collect(t, answer.NewExtractive(), req), ""); strings.Contains(got, "[1973 oil crisis") {
		t.Errorf("one document: got %q, want pages only", got)
	}
}

func TestExtractiveAnswerWithoutMatch(t *testing.T) {
	cats := []search.Result{{Page: 6, Title: "Pets", Text: "Cats sleep a lot. Dogs bark."}}
	for _, tc := range []struct {
		passages      []search.Result
		found, titled bool
		want          string
	}{
		{nil, false, false, "\n\nNo passage of the document matches this question."},
		{nil, false, true, "\n\nNo passage of your documents matches this question."},
		{cats, true, false, "\n\nNo sentence of the passages found shares a word with the question; the best passage begins:\n\n- “Cats sleep a lot.” [p. 6]"},
		{cats, false, false, "\n\n**The document does not seem to answer this.** The closest passages:\n\n- “Cats sleep a lot.” [p. 6]"},
		{cats, false, true, "\n\n**Your documents do not seem to answer this.** The closest passages:\n\n- “Cats sleep a lot.” [Pets, p. 6]"},
	} {
		req := answer.Request{Question: "What is quantum gravity?", Passages: tc.passages, Found: tc.found, Titled: tc.titled}
		got := strings.Join(collect(t, answer.NewExtractive(), req), "")
		if got != answer.ExtractiveLabel+tc.want {
			t.Errorf("got %q, want the label and then …%q", got, tc.want)
		}
	}
}

func TestExtractiveAnswerStops(t *testing.T) {
	req := answer.Request{Question: "river", Passages: []search.Result{{Page: 1, Text: "The river is long."}}}
	stop := errors.New("client gone")
	n := 0
	err := answer.NewExtractive().Answer(context.Background(), req, func(string) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("got %v after %d tokens, want the emit error after 3", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	var ae *answer.Error
	if err := answer.NewExtractive().Answer(ctx, req, func(string) error { return nil }); !errors.As(err, &ae) || ae.Kind != answer.FailTimeout {
		t.Errorf("past the deadline: got %v, want an answer.Error of kind timeout", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := answer.NewExtractive().Answer(ctx, req, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

func TestExtractiveStandalone(t *testing.T) {
	history := []answer.Message{
		{Role: store.RoleUser, Content: "Who designed the Eiffel Tower?"},
		{Role: store.RoleAssistant, Content: "Gustave Eiffel's company [p. 3]."},
	}
	for _, tc := range []struct {
		history  []answer.Message
		question string
		want     string
	}{
		{nil, "When was it built?", "When was it built?"},
		{history, "When was it built?", "When was it built? designed Eiffel Tower"},
		{history, "How tall?", "How tall? designed Eiffel Tower"},
		{history, "When was the Louvre pyramid in Paris finished?", "When was the Louvre pyramid in Paris finished?"},
		{history, "Who designed the tower's lift?", "Who designed the tower's lift?"},
		{append(history, answer.Message{Role: store.RoleUser, Content: "Where is it?"}, answer.Message{Role: store.RoleAssistant, Content: "Paris."}), "How tall is it?",
			"How tall is it? designed Eiffel Tower"},
	} {
		got, err := answer.NewExtractive().Standalone(context.Background(), tc.history, tc.question)
		if err != nil || got != tc.want {
			t.Errorf("Standalone(%q) = %q, %v; want %q", tc.question, got, err, tc.want)
		}
	}
}
