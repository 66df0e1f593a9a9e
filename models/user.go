package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// ErrNotFound means the row asked for does not exist (or is not the asker's).
var ErrNotFound = errors.New("not found")

// User is a person who signs in. ID stays inside the control plane; URLs and
// the API show PublicID.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID        int64     `bun:"id,pk,autoincrement"`
	PublicID  string    `bun:"public_id,notnull"`
	Email     string    `bun:"email,notnull"`
	Name      string    `bun:"name,notnull"`
	AvatarURL string    `bun:"avatar_url,notnull"`
	IsAdmin   bool      `bun:"is_admin,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// DisplayName is the name to show: the user's name, else their e-mail.
func (u *User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// Profile is what a sign-in tells about a person.
type Profile struct {
	Email     string
	Name      string
	AvatarURL string
	IsAdmin   bool
}

// NormalizeEmail lower-cases and trims an e-mail address, so one address is
// one user.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ParseEmail normalises a bare e-mail address such as you@example.com, or
// says why it is not one.
func ParseEmail(s string) (string, error) {
	email := NormalizeEmail(s)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return "", fmt.Errorf("%q is not an e-mail address such as you@example.com", s)
	}
	return email, nil
}

// SignIn returns the user with the profile's e-mail, creating them if new
// and updating their name, picture and admin flag. Concurrent sign-ins of a
// new user make exactly one row. An empty Name or AvatarURL keeps the stored
// one.
func (s *Store) SignIn(ctx context.Context, p Profile) (*User, error) {
	p.Email = NormalizeEmail(p.Email)
	now := time.Now().UTC()
	u := &User{
		PublicID: NewPublicID(), Email: p.Email, Name: p.Name, AvatarURL: p.AvatarURL,
		IsAdmin: p.IsAdmin, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := s.DB.NewInsert().Model(u).Ignore().Exec(ctx); err != nil {
		return nil, fmt.Errorf("models: insert user: %w", err)
	}
	q := s.DB.NewUpdate().Model((*User)(nil)).
		Set("is_admin = ?", p.IsAdmin).
		Set("updated_at = ?", now).
		Where("email = ?", p.Email)
	if p.Name != "" {
		q.Set("name = ?", p.Name)
	}
	if p.AvatarURL != "" {
		q.Set("avatar_url = ?", p.AvatarURL)
	}
	if _, err := q.Exec(ctx); err != nil {
		return nil, fmt.Errorf("models: update user: %w", err)
	}
	return s.UserByEmail(ctx, p.Email)
}

// UserByEmail returns the user with that e-mail, or ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	return s.user(ctx, "email = ?", NormalizeEmail(email))
}

// User returns the user with that internal id, or ErrNotFound.
func (s *Store) User(ctx context.Context, id int64) (*User, error) {
	return s.user(ctx, "id = ?", id)
}

func (s *Store) user(ctx context.Context, where string, arg any) (*User, error) {
	u := new(User)
	err := s.DB.NewSelect().Model(u).Where(where, arg).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: fetch user: %w", err)
	}
	return u, nil
}
