package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// APIToken is a bearer token for /api/v1. Only its SHA-256 is stored; the
// token itself is shown once, when it is made.
type APIToken struct {
	bun.BaseModel `bun:"table:api_tokens"`

	ID         int64      `bun:"id,pk,autoincrement"`
	UserID     int64      `bun:"user_id,notnull"`
	TokenHash  string     `bun:"token_hash,notnull"`
	Name       string     `bun:"name,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
}

// tokenPrefix marks silo's tokens, so a leaked one is easy to recognise.
const tokenPrefix = "silo_"

// lastUsedGranularity bounds how often a token's last-used time is written.
const lastUsedGranularity = time.Minute

// CreateAPIToken makes a new token for the user and returns it in clear.
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name string) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	t := &APIToken{UserID: userID, TokenHash: hashToken(token), Name: name, CreatedAt: time.Now().UTC()}
	if _, err := s.DB.NewInsert().Model(t).Exec(ctx); err != nil {
		return "", fmt.Errorf("models: insert api token: %w", err)
	}
	return token, nil
}

// UserByAPIToken returns the owner of a token and records its use, or
// ErrNotFound for a token that does not exist.
func (s *Store) UserByAPIToken(ctx context.Context, token string) (*User, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return nil, ErrNotFound
	}
	t := new(APIToken)
	err := s.DB.NewSelect().Model(t).Where("token_hash = ?", hashToken(token)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("models: fetch api token: %w", err)
	}
	now := time.Now().UTC()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > lastUsedGranularity {
		if _, err := s.DB.NewUpdate().Model(t).Set("last_used_at = ?", now).WherePK().Exec(ctx); err != nil {
			return nil, fmt.Errorf("models: touch api token: %w", err)
		}
	}
	return s.User(ctx, t.UserID)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// APITokensByUser returns the user's tokens, newest first.
func (s *Store) APITokensByUser(ctx context.Context, userID int64) ([]APIToken, error) {
	out := []APIToken{}
	err := s.DB.NewSelect().Model(&out).Where("user_id = ?", userID).Order("id DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("models: api tokens of user %d: %w", userID, err)
	}
	return out, nil
}

// PublicID names a token in pages and forms without revealing it: the start
// of its hash.
func (t *APIToken) PublicID() string { return t.TokenHash[:publicIDLen] }

const publicIDLen = 16

// DeleteAPIToken revokes the user's token with that public id; another
// user's token is ErrNotFound.
func (s *Store) DeleteAPIToken(ctx context.Context, userID int64, publicID string) error {
	if len(publicID) != publicIDLen || strings.Trim(publicID, "0123456789abcdef") != "" {
		return ErrNotFound
	}
	res, err := s.DB.NewDelete().Model((*APIToken)(nil)).
		Where("user_id = ?", userID).
		Where("token_hash LIKE ?", publicID+"%").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("models: delete api token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
