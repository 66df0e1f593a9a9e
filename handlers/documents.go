package handlers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/pdf"
	"silo/store"
	"silo/web"
)

// maxFilesPerUpload bounds how many files one upload request may carry.
const maxFilesPerUpload = 20

// documentsPageData is what documents.html and document_list.html show.
type documentsPageData struct {
	web.Frame
	Documents []models.Document
	Refused   []*refusal // the files of the last upload refused, and why
	View      listView
	All       int // documents before the filter
	MaxMB     int
}

// Storage is how many bytes of PDFs the documents take.
func (d documentsPageData) Storage() int64 {
	var n int64
	for i := range d.Documents {
		n += d.Documents[i].SizeBytes
	}
	return n
}

// Busy reports whether any document is still being ingested, so the list
// keeps polling.
func (d documentsPageData) Busy() bool {
	for i := range d.Documents {
		if d.Documents[i].Busy() {
			return true
		}
	}
	return false
}

// documentsPage lists the signed-in user's documents, with the upload form.
func (h *Handler) documentsPage(c *gin.Context) {
	if !h.workspaceReady(c) {
		h.Render(c, http.StatusOK, "documents_pending.html", workspaceData{Frame: h.Frame(c, "Setting up your workspace")})
		return
	}
	h.renderDocuments(c, "documents.html", nil)
}

// documentList is the list fragment, polled while documents are ingested.
func (h *Handler) documentList(c *gin.Context) { h.renderDocuments(c, "document_list.html", nil) }

func (h *Handler) renderDocuments(c *gin.Context, name string, refused []*refusal) {
	docs, err := h.store.DocumentsByUser(c.Request.Context(), web.CurrentUser(c).ID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	v := listView{Q: strings.TrimSpace(c.Query("q")), Sort: c.Query("sort")}
	h.Render(c, http.StatusOK, name, documentsPageData{
		Frame: h.Frame(c, "Your documents"), Documents: v.apply(docs), All: len(docs), View: v, Refused: refused, MaxMB: h.cfg.MaxUploadMB,
	})
}

// listView is how the documents list is shown: only the documents whose
// title or file name holds Q (any case), in the order Sort says ("name",
// "size", or the newest first).
type listView struct {
	Q, Sort string
}

// Query is the view as the list's address query, for its polls.
func (v listView) Query() string {
	q := url.Values{}
	if v.Q != "" {
		q.Set("q", v.Q)
	}
	if v.Sort != "" {
		q.Set("sort", v.Sort)
	}
	return q.Encode()
}

// apply filters and sorts docs (the newest first) as the view says.
func (v listView) apply(docs []models.Document) []models.Document {
	if v.Q != "" {
		q := strings.ToLower(v.Q)
		docs = slices.DeleteFunc(docs, func(d models.Document) bool {
			return !strings.Contains(strings.ToLower(d.Title), q) && !strings.Contains(strings.ToLower(d.FileName), q)
		})
	}
	switch v.Sort {
	case "name":
		slices.SortStableFunc(docs, func(a, b models.Document) int {
			return strings.Compare(strings.ToLower(a.Title), strings.ToLower(b.Title))
		})
	case "size":
		slices.SortStableFunc(docs, func(a, b models.Document) int { return cmp.Compare(b.SizeBytes, a.SizeBytes) })
	}
	return docs
}

// refusal is an upload refused for a reason a person can act on, with the
// API status that says it, and the document it repeats when it is one
// already uploaded.
type refusal struct {
	reason string
	status int
	same   *models.Document
}

func (r *refusal) Error() string { return r.reason }

// Reason is why the file was refused, for the page.
func (r *refusal) Reason() string { return r.reason }

// Same is the document the file repeats, or nil.
func (r *refusal) Same() *models.Document { return r.same }

// refuse is a refusal of what was sent (422).
func refuse(format string, args ...any) *refusal {
	return &refusal{reason: fmt.Sprintf(format, args...), status: http.StatusUnprocessableEntity}
}

// tooLarge is a refusal of a file or request over the limit (413).
func tooLarge(format string, args ...any) *refusal {
	return &refusal{reason: fmt.Sprintf(format, args...), status: http.StatusRequestEntityTooLarge}
}

// readUpload reads one uploaded file whole; one over MAX_UPLOAD_MB or cut
// short is refused.
func (h *Handler) readUpload(fileName string, r io.Reader) ([]byte, error) {
	fileName = cleanFileName(fileName)
	limit := int64(h.cfg.MaxUploadMB) << 20
	file, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge("%s is larger than %d MB", fileName, h.cfg.MaxUploadMB)
		}
		return nil, refuse("%s could not be received completely; please try again", fileName)
	}
	if int64(len(file)) > limit {
		return nil, tooLarge("%s is larger than %d MB", fileName, h.cfg.MaxUploadMB)
	}
	return file, nil
}

// addDocument checks one uploaded file (read by readUpload) and, if it is a
// PDF silo takes, stores its bytes in the tenant database and queues it. A
// refused file leaves nothing behind and comes back as a *refusal.
func (h *Handler) addDocument(ctx context.Context, u *models.User, fileName string, file []byte) (*models.Document, error) {
	fileName = cleanFileName(fileName)
	n, err := h.store.CountDocuments(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if n >= h.cfg.MaxDocuments {
		return nil, refuse("%s: you have reached the limit of %d documents; delete some first", fileName, h.cfg.MaxDocuments)
	}
	switch {
	case len(file) == 0:
		return nil, refuse("%s is empty", fileName)
	case !bytes.Contains(file[:min(len(file), 1024)], []byte("%PDF-")):
		return nil, refuse("%s is not a PDF", fileName)
	}
	sum := sha256.Sum256(file)
	same, err := h.store.DocumentBySHA256(ctx, u.ID, hex.EncodeToString(sum[:]))
	switch {
	case err == nil:
		return nil, &refusal{reason: fmt.Sprintf("%s is already uploaded, as “%s”", fileName, same.Title), status: http.StatusConflict, same: same}
	case !errors.Is(err, models.ErrNotFound):
		return nil, err
	}
	doc := &models.Document{
		PublicID: models.NewPublicID(), UserID: u.ID, FileName: fileName, Title: strings.TrimSuffix(fileName, filepath.Ext(fileName)),
		SizeBytes: int64(len(file)), SHA256: hex.EncodeToString(sum[:]), Status: models.DocumentQueued,
	}
	// The reader child that checks the PDF here reads its pages later, for
	// the worker it is handed to.
	x, err := h.readers.Start(ctx, file)
	switch {
	case errors.Is(err, pdf.ErrPasswordProtected):
		// Kept, failed, so the list says why; its bytes are not.
		doc.Status, doc.Error = models.DocumentFailed, models.ReasonPasswordProtected
		return doc, h.store.InsertDocument(ctx, doc)
	case err != nil:
		return nil, refuse("%s could not be read as a PDF (%s)", fileName, pdf.Reason(err))
	}
	defer func() {
		if x != nil {
			x.Close()
		}
	}()
	info := x.Info()
	switch {
	case info.Pages == 0:
		return nil, refuse("%s has no pages", fileName)
	case info.Pages > h.cfg.MaxPages:
		return nil, refuse("%s has %d pages; the limit is %d", fileName, info.Pages, h.cfg.MaxPages)
	}
	if t := strings.TrimSpace(info.Title); t != "" && utf8.ValidString(t) {
		doc.Title = t
	}
	doc.Pages = info.Pages
	v, err := h.store.VectorDatabaseByUser(ctx, u.ID)
	if err != nil || v.Status != models.TenantReady {
		return nil, refuse("your workspace is still being set up; try again in a moment")
	}
	db, release, err := h.tenants.DB(ctx, v)
	if err != nil {
		return nil, err
	}
	defer release()
	content := store.New(db)
	if err := content.SaveFile(ctx, doc.PublicID, file); err != nil {
		return nil, err
	}
	if err := h.store.InsertDocument(ctx, doc); err != nil {
		if derr := content.DeleteDocument(context.WithoutCancel(ctx), doc.PublicID); derr != nil {
			h.log.Error("upload: remove the bytes of a document not recorded", "document", doc.PublicID, "err", derr)
		}
		return nil, err
	}
	h.readers.Handoff(doc.PublicID, x)
	x = nil
	h.ingester.Notify()
	return doc, nil
}

// cleanFileName keeps the base name of an uploaded file, printable and not
// too long.
func cleanFileName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	if name == "" || name == "." || name == "/" {
		name = "document.pdf"
	}
	if utf8.RuneCountInString(name) > 200 {
		name = string([]rune(name)[:200])
	}
	return name
}

// upload takes the files of the page's upload form (htmx, multipart, field
// "file", several at once) and answers with the list, refusals on top.
func (h *Handler) upload(c *gin.Context) {
	u := web.CurrentUser(c)
	var refused []*refusal
	overLimit := fmt.Sprintf("the upload is larger than %d files of %d MB", maxFilesPerUpload, h.cfg.MaxUploadMB)
	err := eachFile(c, overLimit, func(name string, part io.Reader) error {
		file, err := h.readUpload(name, part)
		if err == nil {
			_, err = h.addDocument(c.Request.Context(), u, name, file)
		}
		var r *refusal
		if errors.As(err, &r) {
			refused = append(refused, r)
			return nil
		}
		return err
	})
	var r *refusal
	switch {
	case errors.As(err, &r):
		refused = append(refused, r)
	case err != nil:
		h.Fail(c, http.StatusInternalServerError, "The upload failed; please try again.", err)
		return
	}
	h.renderDocuments(c, "document_list.html", refused)
}

// eachFile streams the multipart "file" parts of the request to fn, one at
// a time, without keeping them on disk; a request over its size limit
// (web.LimitBody) is refused with the reason overLimit.
func eachFile(c *gin.Context, overLimit string, fn func(name string, r io.Reader) error) error {
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return refuse(`send the PDF as multipart/form-data in the field "file"`)
	}
	files := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return tooLarge("%s", overLimit)
			}
			return refuse("the upload could not be read; please try again")
		}
		if part.FormName() != "file" || part.FileName() == "" {
			continue
		}
		if files++; files > maxFilesPerUpload {
			return refuse("send at most %d files at once", maxFilesPerUpload)
		}
		if err := fn(part.FileName(), part); err != nil {
			return err
		}
	}
	if files == 0 {
		return refuse("choose a PDF to upload")
	}
	return nil
}

// removeDocument deletes a document's bytes, pages, chunks and
// conversations from the tenant database, then its row.
func (h *Handler) removeDocument(ctx context.Context, doc *models.Document) error {
	content, release, err := h.UserContent(ctx, doc.UserID)
	if err != nil {
		return err
	}
	defer release()
	if err := content.DeleteDocument(ctx, doc.PublicID); err != nil {
		return err
	}
	return h.store.DeleteDocument(ctx, doc.ID)
}

// deletePageData is what delete.html shows: the document and how many
// conversations about it go with it.
type deletePageData struct {
	web.Frame
	Doc           *models.Document
	Conversations int
}

// confirmDelete asks whether to delete a document, saying what goes.
func (h *Handler) confirmDelete(c *gin.Context) {
	doc, content, release, ok := h.OpenUserDocument(c)
	if !ok {
		return
	}
	defer release()
	n, err := content.CountConversations(c.Request.Context(), doc.PublicID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.Render(c, http.StatusOK, "delete.html", deletePageData{Frame: h.Frame(c, "Delete "+doc.Title), Doc: doc, Conversations: n})
}

// deleteDocument deletes a document, as confirmed (confirmDelete, or the
// list's Remove button of a failed one).
func (h *Handler) deleteDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	if err := h.removeDocument(c.Request.Context(), doc); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	// The list's Remove button swaps the list; anywhere else, the
	// document's page is gone: back to the list's page, which says so.
	if c.GetHeader("HX-Request") == "true" && c.GetHeader("HX-Target") == "documents" {
		h.renderDocuments(c, "document_list.html", nil)
		return
	}
	h.Notify(c, "Deleted “"+doc.Title+"”, its pages and its conversations.")
	web.Redirect(c, "/")
}

// retryDocument queues a failed document again.
func (h *Handler) retryDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	if !doc.Retryable() {
		h.Fail(c, http.StatusConflict, "This document cannot be retried: "+doc.Error+".", nil)
		return
	}
	if err := h.store.RequeueDocument(c.Request.Context(), doc.ID); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.ingester.Notify()
	if c.GetHeader("HX-Request") == "true" {
		h.renderDocuments(c, "document_list.html", nil)
		return
	}
	web.Redirect(c, "/documents/"+doc.PublicID)
}

// documentJSON is a document as the API shows it.
type documentJSON struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	FileName   string    `json:"file_name"`
	SizeBytes  int64     `json:"size_bytes"`
	Status     string    `json:"status"`
	Pages      int       `json:"pages"`
	PagesDone  int       `json:"pages_done"`
	EmptyPages int       `json:"empty_pages"`
	Chunks     int       `json:"chunks"`
	Error      string    `json:"error"`
	CreatedAt  time.Time `json:"created_at"`
}

func newDocumentJSON(d *models.Document) documentJSON {
	return documentJSON{
		ID: d.PublicID, Title: d.Title, FileName: d.FileName, SizeBytes: d.SizeBytes,
		Status: d.Status, Pages: d.Pages, PagesDone: d.PagesDone, EmptyPages: d.EmptyPages,
		Chunks: d.Chunks, Error: d.Error, CreatedAt: d.CreatedAt,
	}
}

// apiDocuments answers GET /api/v1/documents: the token owner's documents.
func (h *Handler) apiDocuments(c *gin.Context) {
	docs, err := h.store.DocumentsByUser(c.Request.Context(), web.CurrentUser(c).ID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	out := make([]documentJSON, len(docs))
	for i := range docs {
		out[i] = newDocumentJSON(&docs[i])
	}
	c.JSON(http.StatusOK, gin.H{"documents": out})
}

// apiDocument answers GET /api/v1/documents/{id}.
func (h *Handler) apiDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, newDocumentJSON(doc))
}

// apiUpload answers POST /api/v1/documents (multipart field "file", one
// file): 202 with the queued document, or 4xx with the reason.
func (h *Handler) apiUpload(c *gin.Context) {
	// The file is only stored once the request is known to hold no other:
	// a second file refuses the request with nothing stored.
	var name string
	var file []byte
	err := eachFile(c, fmt.Sprintf("the file is larger than %d MB", h.cfg.MaxUploadMB), func(n string, part io.Reader) error {
		if name != "" {
			return refuse("send one file per request")
		}
		name = n
		var err error
		file, err = h.readUpload(n, part)
		return err
	})
	var doc *models.Document
	if err == nil {
		doc, err = h.addDocument(c.Request.Context(), web.CurrentUser(c), name, file)
	}
	var r *refusal
	switch {
	case errors.As(err, &r) && r.same != nil:
		c.JSON(r.status, gin.H{"error": r.reason, "id": r.same.PublicID})
	case errors.As(err, &r):
		h.Fail(c, r.status, r.reason, nil)
	case err != nil:
		h.Fail(c, http.StatusInternalServerError, "", err)
	default:
		c.JSON(http.StatusAccepted, gin.H{"id": doc.PublicID, "status": doc.Status, "error": doc.Error})
	}
}

// apiDeleteDocument answers DELETE /api/v1/documents/{id}.
func (h *Handler) apiDeleteDocument(c *gin.Context) {
	doc, ok := h.UserDocument(c)
	if !ok {
		return
	}
	if err := h.removeDocument(c.Request.Context(), doc); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// multipartOverhead is room for the parts' headers and boundaries.
const multipartOverhead = 1 << 20

// uploadLimit is the most a request carrying n files of at most MAX_UPLOAD_MB
// may weigh.
func (h *Handler) uploadLimit(n int) int64 {
	return int64(n)*(int64(h.cfg.MaxUploadMB)<<20) + multipartOverhead
}
