package answer

import (
	"context"
	"errors"
	"slices"
	"strings"

	"silo/search"
	"silo/store"
	"silo/words"
)

// Limits of an extractive answer.
const (
	extractiveSentences = 3   // sentences quoted at most
	extractiveSentence  = 400 // bytes of one quoted sentence at most
)

// ExtractiveLabel opens every extractive answer, a small italic line in
// markdown, so nobody mistakes quoted sentences for a model's words.
const ExtractiveLabel = "*Quoted from your documents, no language model:*"

// extractive is the Answerer that needs no model: it quotes the sentences of
// the passages that share the most (and rarest) content words with the
// question, each followed by its page as [p. N], under ExtractiveLabel; a
// heading (words.IsHeading) is never quoted.
type extractive struct{}

// NewExtractive returns the offline Answerer.
func NewExtractive() Answerer { return extractive{} }

// Name returns "extractive".
func (extractive) Name() string { return "extractive" }

// Standalone makes a follow-up searchable with a rule instead of a model:
// when the question refers back (it has a pronoun such as "it", "they",
// "this", "there") or has at most two content words, the content words of
// the previous user questions that it lacks are appended to it, walking
// back through the questions until one that did not itself refer back. Any
// other question is returned unchanged.
func (extractive) Standalone(_ context.Context, history []Message, question string) (string, error) {
	if !refersBack(question) {
		return question, nil
	}
	have := termSet(question)
	var extra []string
	for i := len(history) - 1; i >= 0; i-- { // the caller bounds the history (CHAT_HISTORY_TURNS)
		m := history[i]
		if m.Role != store.RoleUser {
			continue
		}
		for _, w := range contentWords(m.Content) {
			if k := key(w); !have[k] {
				have[k] = true
				extra = append(extra, w)
			}
		}
		if !refersBack(m.Content) {
			break
		}
	}
	if len(extra) == 0 {
		return question, nil
	}
	return strings.TrimSpace(question) + " " + strings.Join(extra[:min(len(extra), 12)], " "), nil
}

// backReferences are the words by which a question points at an earlier one.
var backReferences = map[string]bool{
	"it": true, "its": true, "they": true, "them": true, "their": true, "he": true, "him": true, "his": true,
	"she": true, "her": true, "this": true, "these": true, "those": true, "there": true,
}

// refersBack reports whether a question depends on the turns before it: it
// has a back reference, or at most two content words.
func refersBack(question string) bool {
	for _, w := range words.List(question) {
		if backReferences[strings.ToLower(w)] {
			return true
		}
	}
	return len(contentWords(question)) <= 2
}

// contentWords returns the words of text that are not stop words, as
// written.
func contentWords(text string) []string {
	var out []string
	for _, w := range words.List(text) {
		if !words.IsStopWord([]byte(strings.ToLower(w))) {
			out = append(out, w)
		}
	}
	return out
}

// termSet is the set of a text's content words, stemmed.
func termSet(text string) map[string]bool {
	set := map[string]bool{}
	var sc words.Scanner
	sc.Reset(text, words.Plain)
	for sc.Next() {
		if w := sc.Word(); !words.IsStopWord(w) {
			set[string(words.Stem(w))] = true
		}
	}
	return set
}

// key is the form under which termSet holds a word.
func key(w string) string { return string(words.Stem([]byte(strings.ToLower(w)))) }

// Answer streams the extractive answer word by word. A context that ends
// stops it: a deadline as an *Error of kind timeout, a cancellation
// (the client went away) as the context's error.
func (extractive) Answer(ctx context.Context, req Request, emit func(string) error) error {
	return emitWords(ctx, extractiveAnswer(req), emit)
}

// extractiveAnswer writes the answer: ExtractiveLabel, then the best
// sentences, each on a line of its own as a quotation with its page. When
// the passages do not answer the question (req.Found is false), a line
// says so before them: they are the closest passages, not an answer.
func extractiveAnswer(req Request) string {
	question, passages := req.Question, req.Passages
	var b strings.Builder
	b.WriteString(ExtractiveLabel + "\n\n")
	notFound, noPassage := "The document does not seem to answer this.", "No passage of the document matches this question."
	if req.Titled {
		notFound, noPassage = "Your documents do not seem to answer this.", "No passage of your documents matches this question."
	}
	if len(passages) == 0 {
		b.WriteString(noPassage)
		return b.String()
	}
	// Headings and running titles rank (their words are the topic's) but
	// answer nothing: they are never quoted.
	ranked := slices.DeleteFunc(search.RankSentences(question, passages), func(s search.Sentence) bool {
		return words.IsHeading(s.Text)
	})
	var chosen []search.Sentence
	for _, s := range ranked {
		if len(chosen) == extractiveSentences || s.Score == 0 || s.Score < ranked[0].Score/2 {
			break
		}
		chosen = addSentence(chosen, s)
	}
	lead := ""
	if len(chosen) == 0 {
		first := slices.DeleteFunc(words.SplitSentences(passages[0].Text), words.IsHeading)
		if len(first) == 0 {
			b.WriteString(noPassage)
			return b.String()
		}
		lead = "No sentence of the passages found shares a word with the question; the best passage begins:\n\n"
		chosen = append(chosen, search.Sentence{Text: first[0]})
	}
	if !req.Found {
		lead = "**" + notFound + "** The closest passages:\n\n"
	}
	b.WriteString(lead)
	for i, s := range chosen {
		if i > 0 {
			b.WriteString("\n")
		}
		text := quote(s, extractiveSentence)
		if s.Before != "" && leansBack(s.Text) {
			text = clip(s.Before, extractiveSentence) + " " + text
		}
		b.WriteString("- “" + text + "” [" + pageLabel(passages[s.Passage], req.Titled) + "]")
	}
	return b.String()
}

// openers are the first words of a sentence that leans on the one before
// it ("This led to…", "As a result, …").
var openers = []string{
	"this ", "these ", "that ", "those ", "it ", "its ", "they ", "their ", "he ", "she ", "his ", "her ",
	"such ", "as a result", "the result", "predictably", "therefore", "thus", "consequently", "hence",
	"in response", "however",
}

// leansBack reports whether a sentence needs the one before it to be
// understood.
func leansBack(s string) bool {
	s = strings.ToLower(s)
	for _, o := range openers {
		if strings.HasPrefix(s, o) {
			return true
		}
	}
	return false
}

// addSentence adds s to the chosen sentences unless one of them already
// says it. Neighbouring chunks overlap, so the same sentence, or its tail,
// can come from two passages: the longer one is kept, in the place of the
// first.
func addSentence(chosen []search.Sentence, s search.Sentence) []search.Sentence {
	norm := func(text string) string { return strings.Join(strings.Fields(strings.ToLower(text)), " ") }
	ns := norm(s.Text)
	for i, c := range chosen {
		nc := norm(c.Text)
		if strings.Contains(nc, ns) {
			return chosen
		}
		if strings.Contains(ns, nc) {
			chosen[i] = s
			return chosen
		}
	}
	return append(chosen, s)
}

// emitWords sends text through emit in word-sized tokens, each word with
// the spaces before it, stopping when ctx ends.
func emitWords(ctx context.Context, text string, emit func(string) error) error {
	start := 0
	for i := 1; i <= len(text); i++ {
		if i < len(text) && (!isSpace(text[i]) || isSpace(text[i-1])) {
			continue
		}
		if err := ctx.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return &Error{Kind: FailTimeout, Message: "The answer took longer than the time allowed.", Err: err}
			}
			return err
		}
		if err := emit(text[start:i]); err != nil {
			return err
		}
		start = i
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' }
