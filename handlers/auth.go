package handlers

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"silo/models"
	"silo/web"
)

// Session keys of a Google sign-in in flight.
const (
	sessionOAuthState    = "oauth_state"
	sessionOAuthVerifier = "oauth_verifier"
)

// loginPageData is what login.html shows.
type loginPageData struct {
	web.Frame
	Google bool
	Dev    bool
	Error  string
	Email  string
}

func (h *Handler) loginPage(c *gin.Context) {
	if web.CurrentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	h.renderLogin(c, http.StatusOK, "", "")
}

// accountDeleted is the query of the sign-in page an account's deletion
// ends on, so that it says so (there is no session left to carry it).
const accountDeleted = "account=deleted"

// renderLogin shows the sign-in page, with the reason the last attempt was
// refused, if any.
func (h *Handler) renderLogin(c *gin.Context, status int, reason, email string) {
	frame := h.Frame(c, "Sign in")
	if c.Request.URL.RawQuery == accountDeleted {
		frame.Notice = "Your account, its documents and its conversations are deleted."
	}
	h.Render(c, status, "login.html", loginPageData{
		Frame:  frame,
		Google: h.google != nil,
		Dev:    h.cfg.DevLoginEnabled(),
		Error:  reason,
		Email:  email,
	})
}

// refuseSignIn logs why a sign-in failed and shows the sign-in page with
// what the person should know. The session gains no user.
func (h *Handler) refuseSignIn(c *gin.Context, status int, reason string, err error) {
	h.log.Warn("sign-in refused", "reason", reason, "err", err)
	h.renderLogin(c, status, reason, "")
}

// signIn records the person, starts a fresh session for them and sends them
// to their documents.
func (h *Handler) signIn(c *gin.Context, p models.Profile) {
	p.IsAdmin = h.cfg.IsAdmin(p.Email)
	u, err := h.store.SignIn(c.Request.Context(), p)
	if err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	if err := h.SignIn(c, u); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	h.log.Info("signed in", "user", u.PublicID)
	h.ensureWorkspace(c, u, signInProvisionWait)
	web.Redirect(c, "/")
}

// devLogin signs in with an e-mail address alone. The route exists only when
// DEV_LOGIN=true and silo is not served over https.
func (h *Handler) devLogin(c *gin.Context) {
	email, err := models.ParseEmail(c.PostForm("email"))
	if err != nil {
		h.renderLogin(c, http.StatusUnprocessableEntity, "Enter an e-mail address such as you@example.com.", c.PostForm("email"))
		return
	}
	h.signIn(c, models.Profile{Email: email})
}

// logout ends the session.
func (h *Handler) logout(c *gin.Context) {
	if err := h.Sessions.Destroy(c); err != nil {
		h.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	web.Redirect(c, "/login")
}

// googleStart sends the browser to Google with a fresh state and a PKCE
// challenge, both remembered in the session.
func (h *Handler) googleStart(c *gin.Context) {
	state := web.RandomToken()
	verifier := oauth2.GenerateVerifier()
	h.Sessions.Put(c, sessionOAuthState, state)
	h.Sessions.Put(c, sessionOAuthVerifier, verifier)
	c.Redirect(http.StatusFound, h.google.AuthCodeURL(state,
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "select_account")))
}

// googleUser is what Google's OpenID Connect userinfo endpoint answers.
type googleUser struct {
	Sub           string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Picture       string `json:"picture"`
}

// googleCallback finishes a Google sign-in: the state must be the one this
// session started with, the code is exchanged with the PKCE verifier, and
// only a verified e-mail signs in.
func (h *Handler) googleCallback(c *gin.Context) {
	state := h.Sessions.PopString(c, sessionOAuthState)
	verifier := h.Sessions.PopString(c, sessionOAuthVerifier)
	if state == "" || subtle.ConstantTimeCompare([]byte(c.Query("state")), []byte(state)) != 1 {
		h.refuseSignIn(c, http.StatusBadRequest, "This sign-in was not started here or has expired. Please try again.",
			errors.New("oauth state mismatch"))
		return
	}
	if e := c.Query("error"); e != "" {
		h.refuseSignIn(c, http.StatusUnauthorized, googleErrorMessage(e), fmt.Errorf("google error %q", e))
		return
	}
	if verifier == "" {
		h.refuseSignIn(c, http.StatusBadRequest, "This sign-in has lost its security check. Please try again.",
			errors.New("no PKCE verifier in session"))
		return
	}
	code := c.Query("code")
	if code == "" {
		h.refuseSignIn(c, http.StatusBadRequest, "Google sent no sign-in code. Please try again.", nil)
		return
	}
	ctx := context.WithValue(c.Request.Context(), oauth2.HTTPClient, h.httpClient)
	tok, err := h.google.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		h.refuseSignIn(c, http.StatusBadGateway, "Google refused the sign-in. Please try again.", err)
		return
	}
	gu, err := h.googleUserinfo(ctx, tok)
	if err != nil {
		h.refuseSignIn(c, http.StatusBadGateway, "We could not read your Google profile. Please try again.", err)
		return
	}
	if gu.Email == "" || !gu.EmailVerified {
		h.refuseSignIn(c, http.StatusForbidden, "Your Google account's e-mail address is not verified, so it cannot sign in.", nil)
		return
	}
	h.signIn(c, models.Profile{Email: gu.Email, Name: gu.Name, AvatarURL: httpsOnly(gu.Picture)})
}

// googleErrorMessage is what a person reads when Google answers the
// sign-in with an error code; unknown codes are not repeated to them.
func googleErrorMessage(code string) string {
	if code == "access_denied" {
		return "You cancelled the Google sign-in (access_denied). Try again when you are ready."
	}
	return "Google could not sign you in. Please try again."
}

// googleUserinfo fetches the signed-in person's profile.
func (h *Handler) googleUserinfo(ctx context.Context, tok *oauth2.Token) (*googleUser, error) {
	resp, err := h.google.Client(ctx, tok).Get(h.cfg.GoogleUserinfoURL)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: status %d", resp.StatusCode)
	}
	var gu googleUser
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&gu); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	return &gu, nil
}

// httpsOnly keeps an avatar URL only if it is https.
func httpsOnly(u string) string {
	if strings.HasPrefix(u, "https://") && len(u) <= 2048 {
		return u
	}
	return ""
}
