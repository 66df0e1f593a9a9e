package rag

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"silo/testrig/datasets"
)

// collect answers req with a and returns the tokens emitted.
func collect(t *testing.T, a Answerer, req AnswerRequest) []string {
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
	passages := []Result{
		{Page: 3, Text: "The Eiffel Tower is in Paris. It was designed by the engineering company of Gustave Eiffel. Tourists like it."},
		{Page: 4, PageEnd: 5, Text: "The tower was built from 1887 to 1889 as the entrance arch to the World's Fair. It is 330 metres tall."},
		{Page: 9, Text: "Paris has many museums. The Louvre is the largest."},
	}
	tokens := collect(t, NewExtractive(), AnswerRequest{Question: "When was the Eiffel Tower built?", Passages: passages})
	answer := strings.Join(tokens, "")
	want := ExtractiveLabel + "\n\n- “The tower was built from 1887 to 1889 as the entrance arch to the World's Fair.” [pp. 4–5]"
	if !strings.HasPrefix(answer, want) {
		t.Errorf("got answer %q, want it to start %q", answer, want)
	}
	if strings.Contains(answer, "Louvre") || strings.Contains(answer, "Tourists") {
		t.Errorf("answer %q quotes sentences with no word of the question", answer)
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
		passages := []Result{
			{Page: 1, Text: "A gardener saw the king at noon. The bridge over the river was built by engineers."},
			{Page: 2, Text: "A doctor saw the king at dawn. The bridge over the river was built in 1888."},
		}
		answer := extractiveAnswer(c.question, passages)
		if want := ExtractiveLabel + "\n\n- “" + c.want + "”"; !strings.HasPrefix(answer, want) {
			t.Errorf("%s: got %q, want it to start %q", c.question, answer, want)
		}
	}
}

func TestExtractiveAnswerWholeSentences(t *testing.T) {
	passages := []Result{{Page: 2, Text: "Prices of old oil were capped by law. Predictably, old oil was withdrawn from the market. " +
		"In 1973 Nixon named William E. Simon as the first Administrator of the Federal Energy Office."}}
	for _, tc := range []struct{ question, want string }{
		// A sentence that leans on the one before comes with it.
		{"Why was old oil withdrawn from the market?", "“Prices of old oil were capped by law. Predictably, old oil was withdrawn from the market.” [p. 2]"},
		// An initial does not end a sentence.
		{"Who was the first administrator of the Federal Energy Office?", "“In 1973 Nixon named William E. Simon as the first Administrator of the Federal Energy Office.” [p. 2]"},
	} {
		answer := strings.Join(collect(t, NewExtractive(), AnswerRequest{Question: tc.question, Passages: passages}), "")
		if !strings.Contains(answer, "- "+tc.want) {
			t.Errorf("%s: got %q, want it to quote %q", tc.question, answer, tc.want)
		}
	}
}

func TestExtractiveAnswerQuotesOnce(t *testing.T) {
	// Overlapping chunks hand on a sentence, or the tail of one.
	passages := []Result{
		{Page: 1, Text: "Intro. The dam holds back the Nile river water near Aswan."},
		{Page: 2, Text: "river water near Aswan. The dam was finished in 1970."},
		{Page: 2, Text: "The dam holds back the Nile river water near Aswan. Other text."},
	}
	answer := strings.Join(collect(t, NewExtractive(), AnswerRequest{Question: "What does the Aswan dam hold back?", Passages: passages}), "")
	if n := strings.Count(answer, "near Aswan"); n != 1 {
		t.Errorf("answer %q quotes the sentence %d times, want once", answer, n)
	}
}

func TestExtractiveAnswerWithoutMatch(t *testing.T) {
	for _, tc := range []struct {
		passages []Result
		want     string
	}{
		{nil, "No passage of the document matches this question."},
		{[]Result{{Page: 6, Text: "Cats sleep a lot. Dogs bark."}}, "the best passage begins:\n\n- “Cats sleep a lot.” [p. 6]"},
	} {
		answer := strings.Join(collect(t, NewExtractive(), AnswerRequest{Question: "What is quantum gravity?", Passages: tc.passages}), "")
		if !strings.HasPrefix(answer, ExtractiveLabel) || !strings.HasSuffix(answer, tc.want) {
			t.Errorf("got %q, want the label and then …%q", answer, tc.want)
		}
	}
}

func TestExtractiveAnswerStops(t *testing.T) {
	req := AnswerRequest{Question: "river", Passages: []Result{{Page: 1, Text: "The river is long."}}}
	stop := errors.New("client gone")
	n := 0
	err := NewExtractive().Answer(context.Background(), req, func(string) error {
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
	var ae *AnswerError
	if err := NewExtractive().Answer(ctx, req, func(string) error { return nil }); !errors.As(err, &ae) || ae.Kind != FailTimeout {
		t.Errorf("past the deadline: got %v, want an AnswerError of kind timeout", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := NewExtractive().Answer(ctx, req, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

func TestExtractiveStandalone(t *testing.T) {
	history := []Message{
		{RoleUser, "Who designed the Eiffel Tower?"},
		{RoleAssistant, "Gustave Eiffel's company [p. 3]."},
	}
	for _, tc := range []struct {
		history  []Message
		question string
		want     string
	}{
		{nil, "When was it built?", "When was it built?"},
		{history, "When was it built?", "When was it built? designed Eiffel Tower"},
		{history, "How tall?", "How tall? designed Eiffel Tower"},
		{history, "When was the Louvre pyramid in Paris finished?", "When was the Louvre pyramid in Paris finished?"},
		{history, "Who designed the tower's lift?", "Who designed the tower's lift?"},
		{append(history, Message{RoleUser, "Where is it?"}, Message{RoleAssistant, "Paris."}), "How tall is it?",
			"How tall is it? designed Eiffel Tower"},
	} {
		got, err := NewExtractive().Standalone(context.Background(), tc.history, tc.question)
		if err != nil || got != tc.want {
			t.Errorf("Standalone(%q) = %q, %v; want %q", tc.question, got, err, tc.want)
		}
	}
}

// TestExtractiveQuality asks the SQuAD questions of one article of the
// shared data set against its chunks, ranked as search re-ranks them, and
// counts how often the extractive answer quotes an answer when the five
// passages hold one.
func TestExtractiveQuality(t *testing.T) {
	var set struct {
		Questions []struct {
			Question string   `json:"question"`
			Answers  []string `json:"answers"`
		} `json:"questions"`
	}
	if err := json.Unmarshal(datasets.Read(t, "squad-pdfs", "1973-oil-crisis.questions.json"), &set); err != nil {
		t.Fatal(err)
	}
	var all []Result
	for _, c := range ChunkPages(CleanPages(readPageFixture(t, "1973-oil-crisis.txt")), 1000, 150) {
		all = append(all, Result{Text: c.Text, Page: c.Page, PageEnd: c.PageEnd})
	}
	fold := func(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
	holds := func(text string, answers []string) bool {
		for _, a := range answers {
			if strings.Contains(fold(text), fold(a)) {
				return true
			}
		}
		return false
	}
	found, quoted := 0, 0
	for _, q := range set.Questions {
		passages := sentenceRank(q.Question, all)[:5]
		if !holds(passages[0].Text+" "+passages[1].Text+" "+passages[2].Text+" "+passages[3].Text+" "+passages[4].Text, q.Answers) {
			continue
		}
		found++
		if holds(extractiveAnswer(q.Question, passages), q.Answers) {
			quoted++
		}
	}
	rate := float64(quoted) / float64(found)
	t.Logf("the answer quotes an answer for %d of %d questions whose passages hold one (%.3f)", quoted, found, rate)
	if found < 100 || rate < 0.88 {
		t.Errorf("got %d of %d (%.3f), want at least 0.88 of at least 100", quoted, found, rate)
	}
}

// sentenceRank orders passages by the evidence of their texts alone, as
// rerank does without vector scores, best first: the search of these tests,
// which have no database.
func sentenceRank(query string, passages []Result) []Result {
	cands := make([]candidate, len(passages))
	for i, p := range passages {
		cands[i] = candidate{Result: p}
		cands[i].ChunkID = int64(i)
	}
	ranked := rerank(query, nil, cands, len(cands))
	out := make([]Result, len(ranked))
	for i, c := range ranked {
		out[i] = passages[c.ChunkID]
		out[i].Score = c.Score
	}
	return out
}
