package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"silo/models"
	"silo/tenant"
	"silo/web"
)

// How long a request waits for a tenant database to be made before it shows
// the "setting up your workspace" state instead.
const (
	signInProvisionWait = 20 * time.Second
	pageProvisionWait   = 3 * time.Second
)

// workspaceData is what workspace.html shows while a tenant database is not
// ready.
type workspaceData struct {
	web.Frame
	Failed bool // the last attempt failed; the next poll tries again
}

// ensureWorkspace makes sure the user has a ready tenant database, waiting
// at most wait, and reports whether it is ready. A failure is logged, not
// shown as an error: the row stays for the next attempt.
func (h *Handler) ensureWorkspace(c *gin.Context, u *models.User, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(c.Request.Context(), wait)
	defer cancel()
	_, err := h.tenants.Ensure(ctx, u)
	if err != nil && !errors.Is(err, tenant.ErrNotReady) {
		h.log.Error("set up workspace", "user", u.PublicID, "err", err)
	}
	return err == nil
}

// workspaceReady checks the user's tenant database and, when it is not
// ready, tries to finish it (another attempt, or waiting for the one under
// way) for a moment.
func (h *Handler) workspaceReady(c *gin.Context) bool {
	u := web.CurrentUser(c)
	v, err := h.store.VectorDatabaseByUser(c.Request.Context(), u.ID)
	if err == nil && v.Status == models.TenantReady {
		return true
	}
	return h.ensureWorkspace(c, u, pageProvisionWait)
}

// workspaceStatus answers the setting-up page's poll: a full refresh once
// the workspace is ready, the same fragment again until then.
func (h *Handler) workspaceStatus(c *gin.Context) {
	if h.workspaceReady(c) {
		c.Header("HX-Refresh", "true")
		c.Status(http.StatusOK)
		return
	}
	h.Render(c, http.StatusOK, "workspace.html", workspaceData{Frame: h.Frame(c, "Setting up"), Failed: true})
}
