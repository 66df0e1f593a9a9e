package eval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"silo/config"
	"silo/eval"
	"silo/models"
	"silo/search"
	"silo/store"
	"silo/testrig"
	"silo/testrig/datasets"
	"silo/testrig/testdb"
	"silo/words"
)

// TestMain lets the test binary be the PDF reader child of the server it
// starts.
func TestMain(m *testing.M) {
	testrig.RunExtractChild()
	os.Exit(m.Run())
}

// heldOut are the documents left out while tuning search: the report shows
// them apart, to check that a gain on the others holds on them.
var heldOut = []string{"black-death", "prime-number", "victoria-australia"}

// topK is how many passages each search asks for.
const topK = 5

// BenchmarkEval uploads every PDF of ../shared/datasets/squad-pdfs through
// silo's API, waits for ingestion, asks every question in each search mode
// through POST /api/v1/documents/{id}/search and prints hit@1, hit@5 and
// latency per document and overall, beside the BM25 baseline over the same
// chunks; once on SQLite tenants, once on PostgreSQL ones (TEST_POSTGRES_URL).
// The hybrid-direct lines are the same hybrid searches called in process,
// for the latency of the search alone.
// make eval runs it. Knobs for tuning (make eval sets none): EVAL_ENGINES
// (sqlite,postgres), EVAL_MODES (hybrid,vector,fulltext), EVAL_DOCS (slugs;
// default all), EVAL_DIR: another folder of PDFs and
// <slug>.questions.json in the same format, to measure other articles, and
// EVAL_DUMP: a file path; each engine's run writes every search's and
// chat's whole answer there (PATH.<engine>, one JSON object a line), so
// that two builds' rankings can be compared byte for byte (diff).
func BenchmarkEval(b *testing.B) {
	dir := os.Getenv("EVAL_DIR")
	if dir == "" {
		dir = datasets.Dir(b, "squad-pdfs")
	}
	docs, err := eval.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	if only := list("EVAL_DOCS", ""); only != nil {
		docs = slices.DeleteFunc(docs, func(d eval.Document) bool { return !slices.Contains(only, d.Slug) })
		if len(docs) != len(only) {
			b.Fatalf("EVAL_DOCS=%s: some of these are not in %s", strings.Join(only, ","), dir)
		}
	}
	modes := list("EVAL_MODES", "hybrid,vector,fulltext")
	for _, engine := range list("EVAL_ENGINES", "sqlite,postgres") {
		b.Run(engine, func(b *testing.B) {
			for b.Loop() {
				r := newRun(b, engine)
				report := r.evaluate(b, dir, docs, modes)
				title := fmt.Sprintf("\n%s tenants, offline embedder, k = %d, latency through the API:", engine, topK)
				if err := report.Write(os.Stdout, title, groups(report.Docs)...); err != nil {
					b.Fatal(err)
				}
				if slices.Contains(modes, search.ModeHybrid) {
					h := report.Overall(search.ModeHybrid, nil)
					b.ReportMetric(h.HitAt1(), "hit@1")
					b.ReportMetric(h.HitAt5(), "hit@5")
					b.ReportMetric(float64(h.P95())/float64(time.Millisecond), "p95-ms")
				}
			}
		})
	}
}

// groups splits the documents evaluated into the tuning set and the
// held-out documents among them; none when they hold no held-out one
// (other articles, EVAL_DIR).
func groups(docs []string) []eval.Group {
	held := slices.DeleteFunc(slices.Clone(docs), func(d string) bool { return !slices.Contains(heldOut, d) })
	if len(held) == 0 {
		return nil
	}
	tuned := slices.DeleteFunc(slices.Clone(docs), func(d string) bool { return slices.Contains(heldOut, d) })
	return []eval.Group{{Name: "tuning set", Docs: tuned}, {Name: "held out", Docs: held}}
}

// list reads a comma-separated environment variable, or def when unset.
func list(env, def string) []string {
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// run is a silo server on one tenant engine and a user with an API token.
type run struct {
	srv    *testrig.Server
	user   *models.User
	token  string
	engine string
	out    io.Writer     // where evaluate prints its comparison; os.Stdout
	dump   *json.Encoder // EVAL_DUMP's file, or nil
}

func newRun(tb testing.TB, engine string) *run {
	tb.Helper()
	ctx := context.Background()
	store := testdb.ControlPlane(tb, config.SQLite)
	cfg := testrig.Config("")
	var srv *testrig.Server
	if engine == "postgres" {
		srv = testrig.NewPostgresServer(tb, cfg, store)
	} else {
		srv = testrig.NewServer(tb, cfg, store)
	}
	u, err := store.SignIn(ctx, models.Profile{Email: "eval@example.com"})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := srv.Tenants.Ensure(ctx, u); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.Tenants.Delete(context.Background(), u); err != nil {
			tb.Error(err)
		}
	})
	token, err := store.CreateAPIToken(ctx, u.ID, "eval")
	if err != nil {
		tb.Fatal(err)
	}
	r := &run{srv: srv, user: u, token: token, engine: engine, out: os.Stdout}
	if path := os.Getenv("EVAL_DUMP"); path != "" {
		f, err := os.Create(path + "." + engine)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = f.Close() })
		r.dump = json.NewEncoder(f)
	}
	return r
}

// record writes what the API answered to a request to EVAL_DUMP's file.
func (r *run) record(tb testing.TB, path string, request []byte, answer json.RawMessage) {
	tb.Helper()
	if r.dump == nil {
		return
	}
	// The document's id is random: its questions identify it.
	path = strings.Join(strings.Split(path, "/")[:4], "/")
	if err := r.dump.Encode(map[string]any{"path": path, "request": json.RawMessage(request), "answer": answer}); err != nil {
		tb.Fatal(err)
	}
}

// evaluate uploads the documents, waits until they are ready and asks their
// questions in every mode, and of the BM25 baseline; it prints, per
// document, how many questions hybrid answers first and BM25 does not (won),
// and the other way round (lost). A question whose hybrid passages hold an
// answer is also put to the chat API, and it prints how many of the offline
// answers quote one.
func (r *run) evaluate(tb testing.TB, dir string, docs []eval.Document, modes []string) *eval.Report {
	tb.Helper()
	ids := make([]string, len(docs))
	for i, d := range docs {
		pdf, err := os.ReadFile(filepath.Join(dir, d.PDF))
		if err != nil {
			tb.Fatal(err)
		}
		ids[i] = r.upload(tb, d.PDF, pdf)
	}
	for i, d := range docs {
		r.waitReady(tb, d.Slug, ids[i])
	}
	report := &eval.Report{Methods: append([]string{"bm25"}, modes...)}
	if slices.Contains(modes, search.ModeHybrid) {
		report.Methods = append(report.Methods, "bm25-pooled", "workspace")
	}
	var versus []string   // hybrid against bm25 at rank 1, per document
	held, quoted := 0, 0  // questions whose hybrid passages hold an answer, and whose chat answer quotes one
	var quotes quoteTally // what the chat answers quote
	var abstain abstentionTally
	for i, d := range docs {
		texts := r.chunks(tb, ids[i])
		if len(texts) == 0 {
			tb.Fatalf("%s has no chunks", d.Slug)
		}
		bm := eval.NewBM25(texts)
		t := report.Tally(d.Slug, "bm25")
		bmFirst := make([]bool, len(d.Questions))
		for k, q := range d.Questions {
			var top []string
			for _, j := range bm.Top(q.Question, topK) {
				top = append(top, texts[j])
			}
			rank := eval.FirstHit(top, q.Answers)
			bmFirst[k] = rank == 1
			t.Add(rank, 0)
		}
		for _, mode := range modes {
			r.search(tb, ids[i], d.Questions[0].Question, mode) // warm the tenant connection
			t := report.Tally(d.Slug, mode)
			var won, lost int
			for k, q := range d.Questions {
				start := time.Now()
				top := r.search(tb, ids[i], q.Question, mode)
				rank := eval.FirstHit(top, q.Answers)
				t.Add(rank, time.Since(start))
				if mode == search.ModeHybrid {
					a := r.answer(tb, "/api/v1/documents/"+ids[i]+"/chat", q.Question, nil)
					abstain.add(true, a.Found)
					if rank > 0 {
						held++
						if eval.FirstHit([]string{a.Answer}, q.Answers) == 1 {
							quoted++
						}
						quotes.add(eval.Quotes(a.Answer), q.Answers)
					}
				}
				switch first := rank == 1; {
				case first && !bmFirst[k]:
					won++
				case !first && bmFirst[k]:
					lost++
				}
			}
			if mode == search.ModeHybrid {
				for _, q := range otherQuestions(docs, i) {
					abstain.add(false, r.answer(tb, "/api/v1/documents/"+ids[i]+"/chat", q.Question, nil).Found)
				}
				versus = append(versus, fmt.Sprintf("%-26s won %3d  lost %3d  net %+4d", d.Slug, won, lost, won-lost))
			}
		}
		if slices.Contains(modes, search.ModeHybrid) {
			r.direct(tb, ids[i], d, report.Tally(d.Slug, search.ModeHybrid+"-direct"))
		}
	}
	if slices.Contains(modes, search.ModeHybrid) {
		r.pooled(tb, docs, ids, report)
	}
	if versus != nil {
		fmt.Fprintf(r.out, "\n%s tenants, hybrid against bm25 at rank 1 (questions only one of them answers):\n%s\n", r.engine, strings.Join(versus, "\n"))
		fmt.Fprintf(r.out, "\n%s tenants, of those answers: the first quote holds an answer in %d (%.3f; %.3f of all %d questions); %d quotes of %d are headings, %d repeat a quote before them\n",
			r.engine, quotes.firstHolds, share(quotes.firstHolds, held), share(quotes.firstHolds, abstain.own), abstain.own, quotes.headings, quotes.quotes, quotes.repeats)
		fmt.Fprintf(r.out, "%s tenants, the offline (extractive) chat answer quotes an answer for %d of the %d questions whose five passages hold one (%.3f)\n",
			r.engine, quoted, held, share(quoted, held))
		fmt.Fprintf(r.out, "%s tenants, abstention: found for %d of %d of a document's own questions (%.3f); not found for %d of %d questions of another article (%.3f)\n",
			r.engine, abstain.ownFound, abstain.own, share(abstain.ownFound, abstain.own), abstain.otherNotFound, abstain.other, share(abstain.otherNotFound, abstain.other))
	}
	return report
}

// pooled asks every document's questions of all the documents at once,
// through POST /api/v1/search ("workspace"), and of a BM25 index of all
// their chunks ("bm25-pooled"): a hit needs a passage of the question's own
// document that holds an answer. Real-world PDFs of other kinds
// (../shared/datasets/sample-pdfs, those that are not encrypted) are in
// the workspace too, and in the BM25 index, as distractors.
func (r *run) pooled(tb testing.TB, docs []eval.Document, ids []string, report *eval.Report) {
	tb.Helper()
	var texts []string
	var owner []int // the document of each of texts; -1 for a distractor
	for i := range docs {
		for _, t := range r.chunks(tb, ids[i]) {
			texts, owner = append(texts, t), append(owner, i)
		}
	}
	distractors := 0
	for _, id := range r.uploadDistractors(tb) {
		for _, t := range r.chunks(tb, id) {
			texts, owner = append(texts, t), append(owner, -1)
		}
		distractors++
	}
	fmt.Fprintf(r.out, "\n%s tenants, workspace: %d documents and %d real-world PDFs of other kinds as distractors, %d passages in all\n", r.engine, len(docs), distractors, len(texts))
	bm := eval.NewBM25(texts)
	var quotes quoteTally // what the workspace chat's answers quote
	asked, cited := 0, 0  // questions, and answers whose first citation is in the question's document
	for i, d := range docs {
		bmt, wst := report.Tally(d.Slug, "bm25-pooled"), report.Tally(d.Slug, "workspace")
		for _, q := range d.Questions {
			var top []string
			for _, j := range bm.Top(q.Question, topK) {
				if owner[j] == i {
					top = append(top, texts[j])
				} else {
					top = append(top, "") // another document's passage holds no hit
				}
			}
			bmt.Add(eval.FirstHit(top, q.Answers), 0)
			start := time.Now()
			found := r.searchAll(tb, q.Question)
			elapsed := time.Since(start)
			top = top[:0]
			for _, p := range found {
				if p.DocumentID == ids[i] {
					top = append(top, p.Text)
				} else {
					top = append(top, "")
				}
			}
			wst.Add(eval.FirstHit(top, q.Answers), elapsed)
			a := r.answer(tb, "/api/v1/chat", q.Question, nil)
			asked++
			if len(a.Citations) > 0 && a.Citations[0].DocumentID == ids[i] {
				cited++
			}
			quotes.add(eval.Quotes(a.Answer), q.Answers)
		}
	}
	fmt.Fprintf(r.out, "\n%s tenants, workspace chat (POST /api/v1/chat, all documents): the first citation is in the question's document for %d of %d (%.3f); the first quote holds an answer in %d (%.3f); %d quotes of %d are headings, %d repeat a quote before them\n",
		r.engine, cited, asked, share(cited, asked), quotes.firstHolds, share(quotes.firstHolds, asked), quotes.headings, quotes.quotes, quotes.repeats)
}

// searchAll asks POST /api/v1/search for the top passages of all the
// run's documents, best first.
func (r *run) searchAll(tb testing.TB, query string) []struct {
	DocumentID string `json:"document_id"`
	Text       string
} {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "k": topK})
	var raw json.RawMessage
	r.do(tb, http.MethodPost, "/api/v1/search", "application/json", body, http.StatusOK, &raw)
	r.record(tb, "/api/v1/search", body, raw)
	var got struct {
		Results []struct {
			DocumentID string `json:"document_id"`
			Text       string
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		tb.Fatal(err)
	}
	return got.Results
}

// content opens the run's tenant database; release gives it back.
func (r *run) content(tb testing.TB) (store.Content, func()) {
	tb.Helper()
	ctx := context.Background()
	v, err := r.srv.Store.VectorDatabaseByUser(ctx, r.user.ID)
	if err != nil {
		tb.Fatal(err)
	}
	db, release, err := r.srv.Tenants.DB(ctx, v)
	if err != nil {
		tb.Fatal(err)
	}
	return store.New(db), release
}

// direct asks a document's questions by calling search.Searcher.Search in the
// test process, as the API handler does: the search's own latency, without
// HTTP, authentication and the control plane.
func (r *run) direct(tb testing.TB, id string, d eval.Document, t *eval.Tally) {
	tb.Helper()
	ctx := context.Background()
	content, release := r.content(tb)
	defer release()
	s := search.Searcher{Embedder: r.srv.Ingester.Embedder}
	for _, q := range d.Questions {
		start := time.Now()
		res, err := s.Search(ctx, content, []string{id}, q.Question, search.ModeHybrid, topK)
		elapsed := time.Since(start)
		if err != nil {
			tb.Fatal(err)
		}
		top := make([]string, len(res))
		for i, p := range res {
			top[i] = p.Text
		}
		t.Add(eval.FirstHit(top, q.Answers), elapsed)
	}
}

// do sends an API request with the run's token, checks that it answers
// want (0: any status), decodes the JSON answer into out and returns the
// status.
func (r *run) do(tb testing.TB, method, path, contentType string, body []byte, want int, out any) int {
	tb.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		tb.Fatalf("%s %s: %d, %v", method, path, resp.StatusCode, err)
	}
	if want != 0 && resp.StatusCode != want {
		tb.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("%s %s: %v in %s", method, path, err, raw)
	}
	return resp.StatusCode
}

// upload posts a PDF to POST /api/v1/documents and returns its id.
func (r *run) upload(tb testing.TB, name string, pdf []byte) string {
	tb.Helper()
	id, _ := r.post(tb, name, pdf, http.StatusAccepted)
	return id
}

// post posts a PDF to POST /api/v1/documents, wanting the answer want (0:
// any), and returns the document's id, if any, and the status.
func (r *run) post(tb testing.TB, name string, pdf []byte, want int) (id string, status int) {
	tb.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = part.Write(pdf)
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	var got struct{ ID string }
	status = r.do(tb, http.MethodPost, "/api/v1/documents", w.FormDataContentType(), body.Bytes(), want, &got)
	return got.ID, status
}

// uploadDistractors uploads the sample PDFs that are not encrypted and
// returns the ids of those that became ready.
func (r *run) uploadDistractors(tb testing.TB) []string {
	tb.Helper()
	dir, pdfs := datasets.SamplePDFs(tb)
	var ids []string
	for name, f := range pdfs {
		if f.Encrypted {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		if id, status := r.post(tb, name, b, 0); status == http.StatusAccepted {
			ids = append(ids, id) // others are refused at once, as not PDFs that can be read
		}
	}
	var ready []string
	for _, id := range ids {
		if status, _ := r.waitEnd(tb, id); status == models.DocumentReady {
			ready = append(ready, id)
		}
	}
	return ready
}

// waitEnd polls the document until ingestion has ended and returns how,
// ready or failed, and why it failed.
func (r *run) waitEnd(tb testing.TB, id string) (status, reason string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var got struct{ Status, Error string }
		r.do(tb, http.MethodGet, "/api/v1/documents/"+id, "", nil, http.StatusOK, &got)
		if got.Status == models.DocumentReady || got.Status == models.DocumentFailed {
			return got.Status, got.Error
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still %s after 5 minutes", id, got.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady polls the document until ingestion has made it ready.
func (r *run) waitReady(tb testing.TB, slug, id string) {
	tb.Helper()
	if status, reason := r.waitEnd(tb, id); status != models.DocumentReady {
		tb.Fatalf("%s: ingestion failed: %s", slug, reason)
	}
}

// search asks the API for the top passages of a document and returns their
// texts, best first.
func (r *run) search(tb testing.TB, id, query, mode string) []string {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "k": topK, "mode": mode})
	var raw json.RawMessage
	r.do(tb, http.MethodPost, "/api/v1/documents/"+id+"/search", "application/json", body, http.StatusOK, &raw)
	r.record(tb, "/api/v1/documents/"+id+"/search", body, raw)
	var got struct{ Results []struct{ Text string } }
	if err := json.Unmarshal(raw, &got); err != nil {
		tb.Fatal(err)
	}
	out := make([]string, len(got.Results))
	for i, res := range got.Results {
		out[i] = res.Text
	}
	return out
}

// chatAnswer is the chat API's answer without streaming.
type chatAnswer struct {
	Answer    string
	Found     bool
	Citations []struct {
		DocumentID string `json:"document_id"`
	}
}

// answer asks a chat route (a document's, or /api/v1/chat with the public
// ids docs, nil for all) a question without streaming: the offline
// extractive answer, as the run's server has no model.
func (r *run) answer(tb testing.TB, path, question string, docs []string) chatAnswer {
	tb.Helper()
	req := map[string]any{"messages": []map[string]string{{"role": "user", "content": question}}}
	if docs != nil {
		req["documents"] = docs
	}
	body, _ := json.Marshal(req)
	var raw json.RawMessage
	r.do(tb, http.MethodPost, path+"?stream=false", "application/json", body, http.StatusOK, &raw)
	r.record(tb, path, body, raw)
	var got chatAnswer
	if err := json.Unmarshal(raw, &got); err != nil {
		tb.Fatal(err)
	}
	return got
}

// otherQuestions are abstentionQuestions questions of the document after
// docs[i] (the first after the last), evenly spread over its questions:
// questions document i should not answer.
func otherQuestions(docs []eval.Document, i int) []eval.Question {
	if len(docs) < 2 {
		return nil
	}
	qs := docs[(i+1)%len(docs)].Questions
	step := max(len(qs)/abstentionQuestions, 1)
	var out []eval.Question
	for k := 0; k < len(qs) && len(out) < abstentionQuestions; k += step {
		out = append(out, qs[k])
	}
	return out
}

// abstentionQuestions is how many questions of another article each
// document is asked.
const abstentionQuestions = 20

// abstentionTally counts the chat answers' found: for a document's own
// questions, and for another article's.
type abstentionTally struct {
	own, ownFound, other, otherNotFound int
}

func (t *abstentionTally) add(own, found bool) {
	if own {
		t.own++
		if found {
			t.ownFound++
		}
		return
	}
	t.other++
	if !found {
		t.otherNotFound++
	}
}

// share is a of b, 0 when b is.
func share(a, b int) float64 { return float64(a) / float64(max(b, 1)) }

// chunks reads the texts of a document's chunks, in order, from the tenant
// database: the passages the baseline ranks (none for a document without
// text).
func (r *run) chunks(tb testing.TB, id string) []string {
	tb.Helper()
	ctx := context.Background()
	v, err := r.srv.Store.VectorDatabaseByUser(ctx, r.user.ID)
	if err != nil {
		tb.Fatal(err)
	}
	db, release, err := r.srv.Tenants.DB(ctx, v)
	if err != nil {
		tb.Fatal(err)
	}
	defer release()
	var texts []string
	if err := db.NewSelect().Table("chunks").Column("text").Where("document_id = ?", id).Order("position").Scan(ctx, &texts); err != nil {
		tb.Fatal(err)
	}
	return texts
}

// The report splits the held-out documents from the tuning set only when
// some are among those evaluated (EVAL_DIR may hold other articles).
func TestGroups(t *testing.T) {
	got := groups([]string{"force", "black-death", "warsaw"})
	if len(got) != 2 || !slices.Equal(got[0].Docs, []string{"force", "warsaw"}) || !slices.Equal(got[1].Docs, []string{"black-death"}) {
		t.Errorf("with a held-out document: got %+v", got)
	}
	if got := groups([]string{"some-other-article", "another"}); got != nil {
		t.Errorf("other articles: got %+v, want no groups", got)
	}
}

// quoteTally counts what offline answers quote: how often the first quote
// holds an answer, how many quotes are headings (words.IsHeading) and how
// many repeat one before them in the same answer.
type quoteTally struct {
	firstHolds, quotes, headings, repeats int
}

func (t *quoteTally) add(quotes, answers []string) {
	if len(quotes) > 0 && eval.FirstHit(quotes[:1], answers) == 1 {
		t.firstHolds++
	}
	for i, q := range quotes {
		t.quotes++
		if words.IsHeading(q) {
			t.headings++
		}
		if slices.Contains(quotes[:i], q) {
			t.repeats++
		}
	}
}
