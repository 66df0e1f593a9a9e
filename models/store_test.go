package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"silo/models"
	"silo/testrig/testdb"
)

// onEveryControlPlane runs test on a fresh, migrated control plane of each
// engine, in parallel.
func onEveryControlPlane(t *testing.T, test func(t *testing.T, store *models.Store)) {
	t.Helper()
	for _, engine := range testdb.Engines {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			test(t, testdb.ControlPlane(t, engine))
		})
	}
}

// storeCount counts the rows of table matching where.
func storeCount(t *testing.T, store *models.Store, table, where string, args ...any) int {
	t.Helper()
	n, err := store.DB.NewSelect().TableExpr(table).Where(where, args...).Count(t.Context())
	if err != nil {
		t.Fatalf("count %s where %s: %v", table, where, err)
	}
	return int(n)
}

func TestParseEmail(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"you@example.com", "you@example.com", false},
		{"  You@Example.COM ", "you@example.com", false},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org", false},
		{"", "", true},
		{"not-an-email", "", true},
		{"@example.com", "", true},
		{"you@", "", true},
		{"You <you@example.com>", "", true},
		{"a@b.c, d@e.f", "", true},
		{strings.Repeat("a", 250) + "@example.com", "", true},
	}
	for _, tt := range tests {
		got, err := models.ParseEmail(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseEmail(%q): got %q, error %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSignInConcurrentNewUser(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		const n = 8
		var wg sync.WaitGroup
		users := make([]*models.User, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				// Differently cased and padded, all the same address.
				email := " new@example.com"
				if i%2 == 1 {
					email = "New@Example.com "
				}
				users[i], errs[i] = store.SignIn(t.Context(), models.Profile{Email: email, Name: fmt.Sprint("try ", i)})
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("SignIn %d: %v", i, errs[i])
			}
			if users[i].ID != users[0].ID || users[i].PublicID != users[0].PublicID {
				t.Errorf("SignIn %d: got user %d (%s), want %d (%s) like the first", i, users[i].ID, users[i].PublicID, users[0].ID, users[0].PublicID)
			}
			if users[i].Email != "new@example.com" {
				t.Errorf("SignIn %d: got e-mail %q, want %q", i, users[i].Email, "new@example.com")
			}
		}
		if got := storeCount(t, store, "users", "1 = 1"); got != 1 {
			t.Errorf("users after %d concurrent sign-ins of one address: got %d, want 1", n, got)
		}
	})
}

func TestSignInProfile(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		ctx := t.Context()
		first, err := store.SignIn(ctx, models.Profile{
			Email: "  Ann@Example.COM ", Name: "Ann", AvatarURL: "https://example.com/ann.png", IsAdmin: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if first.Email != "ann@example.com" {
			t.Errorf("e-mail: got %q, want %q", first.Email, "ann@example.com")
		}
		if first.Name != "Ann" || first.AvatarURL != "https://example.com/ann.png" || !first.IsAdmin {
			t.Errorf("first sign-in: got name %q, avatar %q, admin %v; want %q, %q, true",
				first.Name, first.AvatarURL, first.IsAdmin, "Ann", "https://example.com/ann.png")
		}
		if len(first.PublicID) != 26 {
			t.Errorf("public id %q: got %d characters, want 26", first.PublicID, len(first.PublicID))
		}

		// An empty name and picture keep the stored ones; the admin flag follows
		// the sign-in.
		again, err := store.SignIn(ctx, models.Profile{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.PublicID != first.PublicID {
			t.Errorf("second sign-in: got user %d (%s), want %d (%s)", again.ID, again.PublicID, first.ID, first.PublicID)
		}
		if again.Name != "Ann" || again.AvatarURL != "https://example.com/ann.png" || again.IsAdmin {
			t.Errorf("second sign-in: got name %q, avatar %q, admin %v; want %q, %q, false",
				again.Name, again.AvatarURL, again.IsAdmin, "Ann", "https://example.com/ann.png")
		}
		if !again.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("created_at: got %v after the second sign-in, want %v", again.CreatedAt, first.CreatedAt)
		}
		if again.UpdatedAt.Before(first.UpdatedAt) {
			t.Errorf("updated_at: got %v after the second sign-in, want at least %v", again.UpdatedAt, first.UpdatedAt)
		}

		renamed, err := store.SignIn(ctx, models.Profile{Email: "ANN@example.com", Name: "Ann B."})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.ID != first.ID || renamed.Name != "Ann B." {
			t.Errorf("third sign-in: got user %d named %q, want %d named %q", renamed.ID, renamed.Name, first.ID, "Ann B.")
		}

		byEmail, err := store.UserByEmail(ctx, "ANN@EXAMPLE.COM")
		if err != nil || byEmail.ID != first.ID {
			t.Errorf("UserByEmail(ANN@EXAMPLE.COM): got %+v, %v; want user %d", byEmail, err, first.ID)
		}
		byID, err := store.User(ctx, first.ID)
		if err != nil || byID.Email != "ann@example.com" {
			t.Errorf("User(%d): got %+v, %v; want ann@example.com", first.ID, byID, err)
		}
		if got := storeCount(t, store, "users", "1 = 1"); got != 1 {
			t.Errorf("users: got %d, want 1", got)
		}

		if _, err := store.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("UserByEmail(nobody@example.com): got %v, want ErrNotFound", err)
		}
		if _, err := store.User(ctx, first.ID+1000); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("User(%d): got %v, want ErrNotFound", first.ID+1000, err)
		}
	})
}

func TestAPITokens(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		ctx := t.Context()
		ann, err := store.SignIn(ctx, models.Profile{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := store.SignIn(ctx, models.Profile{Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		annToken, err := store.CreateAPIToken(ctx, ann.ID, "laptop")
		if err != nil {
			t.Fatal(err)
		}
		annToken2, err := store.CreateAPIToken(ctx, ann.ID, "ci")
		if err != nil {
			t.Fatal(err)
		}
		bobToken, err := store.CreateAPIToken(ctx, bob.ID, "laptop")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(annToken, "silo_") || len(annToken) < len("silo_")+40 {
			t.Errorf("token %q: want silo_ and at least 40 random characters", annToken)
		}
		if annToken == annToken2 || annToken == bobToken {
			t.Errorf("tokens: got %q, %q, %q; want all different", annToken, annToken2, bobToken)
		}

		tests := []struct {
			token string
			want  int64 // 0: ErrNotFound
		}{
			{annToken, ann.ID},
			{annToken2, ann.ID},
			{bobToken, bob.ID},
			{"silo_" + strings.Repeat("A", 43), 0},               // unknown
			{strings.TrimPrefix(annToken, "silo_"), 0},           // without the prefix
			{"SILO_" + strings.TrimPrefix(annToken, "silo_"), 0}, // the prefix in the wrong case
			{annToken + "x", 0},                                  // one character more
			{"", 0},
			{"silo_", 0},
		}
		for _, tt := range tests {
			u, err := store.UserByAPIToken(ctx, tt.token)
			switch {
			case tt.want == 0 && !errors.Is(err, models.ErrNotFound):
				t.Errorf("UserByAPIToken(%q): got %+v, %v; want ErrNotFound", tt.token, u, err)
			case tt.want != 0 && (err != nil || u.ID != tt.want):
				t.Errorf("UserByAPIToken(%q): got %+v, %v; want user %d", tt.token, u, err, tt.want)
			}
		}

		// Only a hash is stored, and use is recorded.
		var rows []models.APIToken
		if err := store.DB.NewSelect().Model(&rows).Order("id").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 {
			t.Fatalf("api_tokens: got %d rows, want 3", len(rows))
		}
		for i, tok := range []string{annToken, annToken2, bobToken} {
			r := rows[i]
			random := strings.TrimPrefix(tok, "silo_")
			if r.TokenHash == tok || strings.Contains(r.TokenHash, random) || len(r.TokenHash) != 64 {
				t.Errorf("token_hash of %q: got %q, want a 64-character hash that is not the token", tok, r.TokenHash)
			}
			if r.LastUsedAt == nil || time.Since(*r.LastUsedAt) > time.Minute {
				t.Errorf("last_used_at of a token just used: got %v, want about now", r.LastUsedAt)
			}
		}
		if rows[0].Name != "laptop" || rows[1].Name != "ci" || rows[0].UserID != ann.ID {
			t.Errorf("api_tokens: got %+v, want ann's laptop and ci tokens first", rows[:2])
		}
	})
}

func TestDocumentsByUser(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		ctx := t.Context()
		ann, err := store.SignIn(ctx, models.Profile{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := store.SignIn(ctx, models.Profile{Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		docs, err := store.DocumentsByUser(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if docs == nil || len(docs) != 0 {
			t.Errorf("DocumentsByUser of a new user: got %#v, want an empty, non-nil slice", docs)
		}

		base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		for i, d := range []struct {
			user  int64
			title string
			at    time.Time
		}{
			{ann.ID, "old", base},
			{bob.ID, "bob's", base.Add(time.Hour)},
			{ann.ID, "new", base.Add(2 * time.Hour)},
			{ann.ID, "middle", base.Add(time.Hour)},
		} {
			doc := &models.Document{
				PublicID: fmt.Sprintf("doc%029d", i), UserID: d.user, Title: d.title, FileName: d.title + ".pdf",
				SizeBytes: 1024, Pages: 3, Status: models.DocumentReady, CreatedAt: d.at, UpdatedAt: d.at,
			}
			if _, err := store.DB.NewInsert().Model(doc).Exec(ctx); err != nil {
				t.Fatalf("insert document %q: %v", d.title, err)
			}
		}

		docs, err = store.DocumentsByUser(ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range docs {
			got = append(got, d.Title)
			if d.UserID != ann.ID {
				t.Errorf("DocumentsByUser(ann): got %q of user %d", d.Title, d.UserID)
			}
		}
		if want := []string{"new", "middle", "old"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("DocumentsByUser(ann): got %q, want %q (newest first)", got, want)
		}
		if len(docs) > 0 && (!docs[0].CreatedAt.Equal(base.Add(2*time.Hour)) || docs[0].Pages != 3 || docs[0].Status != models.DocumentReady) {
			t.Errorf("DocumentsByUser(ann)[0]: got %+v, want the fields as inserted", docs[0])
		}
	})
}

func TestSessionStore(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		sessions := store.SessionStore()
		token := strings.Repeat("t", 43) // the length of scs's tokens
		if err := sessions.Commit(token, []byte("data"), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		got, found, err := sessions.Find(token)
		if err != nil || !found || string(got) != "data" {
			t.Errorf("Find of a live session: got %q, %v, %v; want %q, true, nil", got, found, err, "data")
		}
		expired := strings.Repeat("e", 43)
		if err := sessions.Commit(expired, []byte("old"), time.Now().Add(-time.Hour)); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		if _, found, err := sessions.Find(expired); found || err != nil {
			t.Errorf("Find of an expired session: got found %v, %v; want false, nil", found, err)
		}
		if err := store.DeleteExpiredSessions(context.Background()); err != nil {
			t.Fatalf("DeleteExpiredSessions: %v", err)
		}
		var tokens []string
		if err := store.DB.NewSelect().Table("sessions").Column("token").Scan(context.Background(), &tokens); err != nil {
			t.Fatal(err)
		}
		if len(tokens) != 1 || tokens[0] != token {
			t.Errorf("sessions after DeleteExpiredSessions: got %q, want only the live one", tokens)
		}
		if err := sessions.Delete(token); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, found, err := sessions.Find(token); found || err != nil {
			t.Errorf("Find of a deleted session: got found %v, %v; want false, nil", found, err)
		}
	})
}

// TestDeleteUserCascades checks the foreign keys on every engine (SQLite
// enforces them only with the foreign_keys pragma).
func TestDeleteUserCascades(t *testing.T) {
	onEveryControlPlane(t, func(t *testing.T, store *models.Store) {
		ctx := t.Context()
		ann, err := store.SignIn(ctx, models.Profile{Email: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := store.SignIn(ctx, models.Profile{Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		for _, u := range []*models.User{ann, bob} {
			if _, err := store.CreateAPIToken(ctx, u.ID, "t"); err != nil {
				t.Fatal(err)
			}
			if _, err := store.DB.NewInsert().Model(&models.Document{
				PublicID: "doc-" + u.PublicID[:20], UserID: u.ID, FileName: "a.pdf", Status: models.DocumentQueued, CreatedAt: now, UpdatedAt: now,
			}).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := store.DB.NewInsert().Model(&models.VectorDatabase{
				UserID: u.ID, Engine: "sqlite", Status: models.TenantReady, CreatedAt: now, UpdatedAt: now,
			}).Exec(ctx); err != nil {
				t.Fatalf("insert vector database: %v", err)
			}
		}
		// A second tenant database for one user breaks the one-per-user rule.
		if _, err := store.DB.NewInsert().Model(&models.VectorDatabase{
			UserID: ann.ID, Engine: "sqlite", Status: models.TenantReady, CreatedAt: now, UpdatedAt: now,
		}).Exec(ctx); err == nil {
			t.Error("a second vector database for one user: got no error, want a unique violation")
		}
		// A document of a user who does not exist breaks the foreign key.
		if _, err := store.DB.NewInsert().Model(&models.Document{
			PublicID: "orphan", UserID: bob.ID + 1000, FileName: "a.pdf", Status: models.DocumentQueued, CreatedAt: now, UpdatedAt: now,
		}).Exec(ctx); err == nil {
			t.Error("a document of no user: got no error, want a foreign key violation")
		}

		if _, err := store.DB.NewDelete().Model((*models.User)(nil)).Where("id = ?", ann.ID).Exec(ctx); err != nil {
			t.Fatalf("delete user: %v", err)
		}
		for _, table := range []string{"api_tokens", "documents", "vector_databases"} {
			if got := storeCount(t, store, table, "user_id = ?", ann.ID); got != 0 {
				t.Errorf("%s of a deleted user: got %d rows, want 0", table, got)
			}
			if got := storeCount(t, store, table, "user_id = ?", bob.ID); got != 1 {
				t.Errorf("%s of another user: got %d rows, want 1", table, got)
			}
		}
	})
}
