package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/web"
)

// settingsData is what settings.html shows.
type settingsData struct {
	web.Frame
	Tokens   []models.APIToken
	NewToken string // shown once, right after it is made
	Error    string
}

// settingsPage shows the API tokens and the delete-account form.
func (h *Handler) settingsPage(c *gin.Context) {
	h.renderSettings(c, http.StatusOK, "", "")
}

func (h *Handler) renderSettings(c *gin.Context, status int, newToken, message string) {
	u := web.CurrentUser(c)
	tokens, err := h.store.APITokensByUser(c.Request.Context(), u.ID)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.Render(c, status, "settings.html", settingsData{
		Frame: h.Frame(c, "Settings"), Tokens: tokens, NewToken: newToken, Error: message,
	})
}

// createToken makes an API token and shows it once.
func (h *Handler) createToken(c *gin.Context) {
	name := strings.TrimSpace(c.PostForm("name"))
	if name == "" {
		name = "API token"
	}
	if utf8.RuneCountInString(name) > 100 { // characters, as the form's maxlength and the column count them
		h.renderSettings(c, http.StatusUnprocessableEntity, "", "A token name is at most 100 characters.")
		return
	}
	tok, err := h.store.CreateAPIToken(c.Request.Context(), web.CurrentUser(c).ID, name)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.renderSettings(c, http.StatusOK, tok, "")
}

// revokeToken deletes one of the user's API tokens.
func (h *Handler) revokeToken(c *gin.Context) {
	err := h.store.DeleteAPIToken(c.Request.Context(), web.CurrentUser(c).ID, c.Param("id"))
	if errors.Is(err, models.ErrNotFound) {
		h.Fail(c, http.StatusNotFound, "", nil)
		return
	}
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	web.Redirect(c, "/settings")
}

// deleteAccount deletes the signed-in user after they typed their e-mail
// address to confirm: their tenant database, rows, tokens and sessions.
func (h *Handler) deleteAccount(c *gin.Context) {
	u := web.CurrentUser(c)
	if models.NormalizeEmail(c.PostForm("confirm")) != u.Email {
		h.renderSettings(c, http.StatusUnprocessableEntity, "", "Type your e-mail address exactly to confirm that the account should be deleted.")
		return
	}
	if err := h.removeAccount(c, u); err != nil {
		h.Fail(c, http.StatusInternalServerError, "Your account could not be deleted completely; silo will finish the job. Please try again later.", err)
		return
	}
	web.Redirect(c, "/login?"+accountDeleted)
}

// apiDeleteAccount answers DELETE /api/v1/account.
func (h *Handler) apiDeleteAccount(c *gin.Context) {
	if err := h.removeAccount(c, web.CurrentUser(c)); err != nil {
		h.Fail(c, http.StatusInternalServerError, "the account could not be deleted completely; silo will finish the job", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// removeAccount drops the user's tenant database, deletes their rows and
// ends every session they have.
func (h *Handler) removeAccount(c *gin.Context, u *models.User) error {
	if err := h.tenants.Delete(c.Request.Context(), u); err != nil {
		return err
	}
	err := h.Sessions.Iterate(c.Request.Context(), func(ctx context.Context) error {
		if h.Sessions.GetInt64(ctx, web.SessionUserID) == u.ID {
			return h.Sessions.Destroy(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !web.Sessionless(c.Request.URL.Path) {
		// This request's own session is committed after the handler returns.
		if err := h.Sessions.Destroy(c); err != nil {
			return err
		}
	}
	h.log.Info("account deleted", "user", u.PublicID)
	return nil
}
