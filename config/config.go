// Package config reads silo's configuration from environment variables, once,
// into a typed struct with defaults.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"silo/chunk"
	"silo/schema"
)

// Engine names a control-plane database engine.
type Engine string

// The control-plane engines silo runs on.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
	MySQL    Engine = "mysql"
)

// Config is silo's whole configuration. Parse fills it from the environment;
// tests may build one directly.
type Config struct {
	Port        int    // PORT
	BaseURL     string // BASE_URL: the public address, used for OAuth redirects and cookie security
	DataDir     string // DATA_DIR: where SQLite files live
	DatabaseURL string // DATABASE_URL: the control plane; empty means SQLite in DATA_DIR

	GoogleClientID     string   // GOOGLE_CLIENT_ID
	GoogleClientSecret string   // GOOGLE_CLIENT_SECRET
	DevLogin           bool     // DEV_LOGIN: email-only sign-in for development
	AdminEmails        []string // ADMIN_EMAILS: comma-separated, lower-cased

	// MemoryLimitMB is a soft limit of the Go heap (MEMORY_LIMIT_MB): the
	// garbage collector works harder near it rather than let a large PDF's
	// vectors double the footprint. GOMEMLIMIT, when set, wins.
	MemoryLimitMB int
	GoMemLimitSet bool // GOMEMLIMIT is set

	LogLevel  slog.Level // LOG_LEVEL: debug, info, warn or error
	LogFormat string     // LOG_FORMAT: text or json

	MigrateOnStart bool   // MIGRATE_ON_START: apply control-plane migrations at start
	AtlasBin       string // ATLAS_BIN: path of the atlas CLI; empty means ./bin/atlas, then PATH

	// TenantDatabaseURLs are the PostgreSQL servers tenant databases are
	// made on (TENANT_DATABASE_URL, comma-separated); empty means another
	// tenant engine.
	TenantDatabaseURLs []string
	NeonAPIKey         string // NEON_API_KEY: one Neon project per tenant
	NeonAPIURL         string // NEON_API_URL
	NeonRegion         string // NEON_REGION
	SecretKey          string // SECRET_KEY: encrypts tenant credentials at rest (32 bytes, base64 or hex)
	TenantMaxConns     int    // TENANT_MAX_CONNS: open tenant connections, all tenants together

	MaxUploadMB    int           // MAX_UPLOAD_MB: largest PDF accepted
	MaxPages       int           // MAX_PAGES: most pages a PDF may have
	MaxDocuments   int           // MAX_DOCUMENTS: documents per tenant
	IngestWorkers  int           // INGEST_WORKERS: documents ingested at once
	ExtractTimeout time.Duration // EXTRACT_TIMEOUT: wall-clock limit of reading one PDF
	ExtractMemMB   int           // EXTRACT_MEMORY_MB: memory limit of the PDF reader
	ChunkSize      int           // CHUNK_SIZE: characters per chunk
	ChunkOverlap   int           // CHUNK_OVERLAP: characters shared by neighbouring chunks

	EmbeddingProvider   string // EMBEDDING_PROVIDER: hash (offline), openai or ollama
	EmbeddingModel      string // EMBEDDING_MODEL
	EmbeddingDimensions int    // EMBEDDING_DIMENSIONS
	OpenAIBaseURL       string // OPENAI_BASE_URL
	OpenAIAPIKey        string // OPENAI_API_KEY
	OllamaHost          string // OLLAMA_HOST

	ChatProvider     string        // CHAT_PROVIDER: extractive (no model), openai or ollama
	ChatModel        string        // CHAT_MODEL; empty means the provider's usual one (see ChatModelName)
	ChatTimeout      time.Duration // CHAT_TIMEOUT: limit of one answer
	ChatTopK         int           // CHAT_TOP_K: passages an answer is written from
	ChatHistoryTurns int           // CHAT_HISTORY_TURNS: earlier turns sent to the model with a question

	// Google's endpoints. They are not read from the environment; tests point
	// them at a fake Google.
	GoogleAuthURL     string
	GoogleTokenURL    string
	GoogleUserinfoURL string
}

// Defaults of the settings that have one.
const (
	DefaultPort    = 8080
	DefaultBaseURL = "http://localhost:8080"
	DefaultDataDir = "./data"

	DefaultNeonAPIURL     = "https://console.neon.tech/api/v2"
	DefaultNeonRegion     = "aws-us-east-2"
	DefaultTenantMaxConns = 50
)

// Embedding providers.
const (
	EmbedHash   = "hash"
	EmbedOpenAI = "openai"
	EmbedOllama = "ollama"
)

// Chat providers.
const (
	ChatExtractive = "extractive"
	ChatOpenAI     = "openai"
	ChatOllama     = "ollama"
)

// minChunkSize is the smallest CHUNK_SIZE: a passage shorter than that
// rarely holds a whole answer.
const minChunkSize = 200

// Tenant database engines.
const (
	TenantSQLite   = "sqlite"
	TenantPostgres = "postgres"
	TenantNeon     = "neon"
)

// Parse reads the configuration through getenv (os.Getenv in production) and
// validates it. The error names every variable that is wrong.
func Parse(getenv func(string) string) (*Config, error) {
	p := parser{getenv: getenv}
	c := &Config{
		Port:                p.int("PORT", DefaultPort),
		BaseURL:             strings.TrimRight(p.str("BASE_URL", DefaultBaseURL), "/"),
		DataDir:             p.str("DATA_DIR", DefaultDataDir),
		DatabaseURL:         p.str("DATABASE_URL", ""),
		GoogleClientID:      p.str("GOOGLE_CLIENT_ID", ""),
		GoogleClientSecret:  p.str("GOOGLE_CLIENT_SECRET", ""),
		DevLogin:            p.bool("DEV_LOGIN", false),
		AdminEmails:         p.list("ADMIN_EMAILS"),
		LogLevel:            p.level("LOG_LEVEL"),
		MemoryLimitMB:       p.int("MEMORY_LIMIT_MB", 200),
		GoMemLimitSet:       p.str("GOMEMLIMIT", "") != "",
		LogFormat:           p.str("LOG_FORMAT", "text"),
		MigrateOnStart:      p.bool("MIGRATE_ON_START", false),
		AtlasBin:            p.str("ATLAS_BIN", ""),
		TenantDatabaseURLs:  p.rawList("TENANT_DATABASE_URL"),
		NeonAPIKey:          p.str("NEON_API_KEY", ""),
		NeonAPIURL:          strings.TrimRight(p.str("NEON_API_URL", DefaultNeonAPIURL), "/"),
		NeonRegion:          p.str("NEON_REGION", DefaultNeonRegion),
		SecretKey:           p.str("SECRET_KEY", ""),
		TenantMaxConns:      p.int("TENANT_MAX_CONNS", DefaultTenantMaxConns),
		MaxUploadMB:         p.int("MAX_UPLOAD_MB", 50),
		MaxPages:            p.int("MAX_PAGES", 2000),
		MaxDocuments:        p.int("MAX_DOCUMENTS", 500),
		IngestWorkers:       p.int("INGEST_WORKERS", runtime.NumCPU()),
		ExtractTimeout:      p.duration("EXTRACT_TIMEOUT", 60*time.Second),
		ExtractMemMB:        p.int("EXTRACT_MEMORY_MB", 1024),
		ChunkSize:           p.int("CHUNK_SIZE", chunk.DefaultChunkSize),
		ChunkOverlap:        p.int("CHUNK_OVERLAP", chunk.DefaultChunkOverlap),
		EmbeddingProvider:   p.str("EMBEDDING_PROVIDER", EmbedHash),
		EmbeddingModel:      p.str("EMBEDDING_MODEL", ""),
		EmbeddingDimensions: p.int("EMBEDDING_DIMENSIONS", -1),
		OpenAIBaseURL:       strings.TrimRight(p.str("OPENAI_BASE_URL", "https://api.openai.com/v1"), "/"),
		OpenAIAPIKey:        p.str("OPENAI_API_KEY", ""),
		OllamaHost:          strings.TrimRight(p.str("OLLAMA_HOST", "http://localhost:11434"), "/"),
		ChatProvider:        p.str("CHAT_PROVIDER", ChatExtractive),
		ChatModel:           p.str("CHAT_MODEL", ""),
		ChatTimeout:         p.duration("CHAT_TIMEOUT", 60*time.Second),
		ChatTopK:            p.int("CHAT_TOP_K", 5),
		ChatHistoryTurns:    p.int("CHAT_HISTORY_TURNS", 6),
		GoogleAuthURL:       "https://accounts.google.com/o/oauth2/v2/auth",
		GoogleTokenURL:      "https://oauth2.googleapis.com/token",
		GoogleUserinfoURL:   "https://openidconnect.googleapis.com/v1/userinfo",
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite://" + filepath.Join(c.DataDir, "silo.db")
	}
	if c.EmbeddingDimensions < 0 {
		c.EmbeddingDimensions = c.defaultDimensions()
	}
	return c, errors.Join(append(p.errs, c.Validate())...)
}

// Validate checks the settings that Parse cannot check one at a time. Each
// error names its variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("PORT", "%d is not a TCP port (1-65535)", c.Port)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("BASE_URL", "%q is not an absolute http or https URL", c.BaseURL)
	}
	if c.DataDir == "" {
		bad("DATA_DIR", "must not be empty")
	}
	if _, err := c.Engine(); err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	if (c.GoogleClientID == "") != (c.GoogleClientSecret == "") {
		bad("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together")
	}
	for _, e := range c.AdminEmails {
		if !strings.Contains(e, "@") {
			bad("ADMIN_EMAILS", "%q is not an e-mail address", e)
		}
	}
	for _, u := range c.TenantDatabaseURLs {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			bad("TENANT_DATABASE_URL", "%q is not a postgres:// URL", redact(u))
		}
	}
	if len(c.TenantDatabaseURLs) > 0 && c.NeonAPIKey != "" {
		bad("TENANT_DATABASE_URL", "set TENANT_DATABASE_URL or NEON_API_KEY, not both")
	}
	if u, err := url.Parse(c.NeonAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("NEON_API_URL", "%q is not an absolute http or https URL", c.NeonAPIURL)
	}
	if c.TenantEngine() != TenantSQLite && c.SecretKey == "" {
		bad("SECRET_KEY", "must be set to encrypt tenant credentials (32 random bytes, base64)")
	}
	if c.SecretKey != "" {
		if _, err := c.Key(); err != nil {
			bad("SECRET_KEY", "%v", err)
		}
	}
	if c.TenantMaxConns < 1 {
		bad("TENANT_MAX_CONNS", "%d is not a positive number", c.TenantMaxConns)
	}
	for name, v := range map[string]int{
		"MEMORY_LIMIT_MB": c.MemoryLimitMB,
		"MAX_UPLOAD_MB":   c.MaxUploadMB, "MAX_PAGES": c.MaxPages, "MAX_DOCUMENTS": c.MaxDocuments,
		"INGEST_WORKERS": c.IngestWorkers, "EXTRACT_MEMORY_MB": c.ExtractMemMB,
	} {
		if v < 1 {
			bad(name, "%d is not a positive number", v)
		}
	}
	if c.ExtractMemMB < 128 {
		bad("EXTRACT_MEMORY_MB", "%d MB is too little for the PDF reader (at least 128)", c.ExtractMemMB)
	}
	if c.ExtractTimeout <= 0 {
		bad("EXTRACT_TIMEOUT", "%s is not a positive duration", c.ExtractTimeout)
	}
	if c.ChunkSize < minChunkSize || c.ChunkSize > chunk.MaxChunkRunes {
		bad("CHUNK_SIZE", "%d is outside %d-%d characters", c.ChunkSize, minChunkSize, chunk.MaxChunkRunes)
	}
	if c.ChunkOverlap < 0 || c.ChunkOverlap >= c.ChunkSize/2 {
		bad("CHUNK_OVERLAP", "%d must be at least 0 and under half of CHUNK_SIZE", c.ChunkOverlap)
	}
	switch c.EmbeddingProvider {
	case EmbedHash, EmbedOpenAI, EmbedOllama:
	default:
		bad("EMBEDDING_PROVIDER", "%q is not hash, openai or ollama", c.EmbeddingProvider)
	}
	if c.EmbeddingDimensions > schema.VectorDims || c.EmbeddingProvider == EmbedHash && c.EmbeddingDimensions == 0 {
		bad("EMBEDDING_DIMENSIONS", "%d: the tenant schema stores up to %d dimensions", c.EmbeddingDimensions, schema.VectorDims)
	}
	for name, raw := range map[string]string{"OPENAI_BASE_URL": c.OpenAIBaseURL, "OLLAMA_HOST": c.OllamaHost} {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(name, "%q is not an absolute http or https URL", raw)
		}
	}
	switch c.ChatProvider {
	case ChatExtractive, ChatOllama:
	case ChatOpenAI:
		if c.OpenAIAPIKey == "" && strings.HasPrefix(c.OpenAIBaseURL, "https://api.openai.com/") {
			bad("OPENAI_API_KEY", "must be set for CHAT_PROVIDER=openai on api.openai.com")
		}
	default:
		bad("CHAT_PROVIDER", "%q is not extractive, openai or ollama", c.ChatProvider)
	}
	if c.ChatTimeout <= 0 {
		bad("CHAT_TIMEOUT", "%s is not a positive duration", c.ChatTimeout)
	}
	if c.ChatTopK < 1 || c.ChatTopK > 50 {
		bad("CHAT_TOP_K", "%d is outside 1-50", c.ChatTopK)
	}
	if c.ChatHistoryTurns < 1 || c.ChatHistoryTurns > 50 {
		bad("CHAT_HISTORY_TURNS", "%d is outside 1-50", c.ChatHistoryTurns)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// Engine returns the control plane's engine, read from DATABASE_URL's scheme.
func (c *Config) Engine() (Engine, error) {
	scheme, rest, ok := strings.Cut(c.DatabaseURL, "://")
	switch {
	case !ok || rest == "":
		return "", errors.New("want sqlite://PATH, postgres://… or mysql://…")
	case scheme == "sqlite":
		return SQLite, nil
	case scheme == "postgres" || scheme == "postgresql":
		return Postgres, nil
	case scheme == "mysql":
		return MySQL, nil
	}
	return "", fmt.Errorf("unsupported scheme %q (want sqlite, postgres or mysql)", scheme)
}

// TenantEngine is where tenant databases are made: PostgreSQL servers when
// TENANT_DATABASE_URL is set, Neon when NEON_API_KEY is, SQLite files
// otherwise.
func (c *Config) TenantEngine() string {
	switch {
	case len(c.TenantDatabaseURLs) > 0:
		return TenantPostgres
	case c.NeonAPIKey != "":
		return TenantNeon
	}
	return TenantSQLite
}

// Key decodes SECRET_KEY: 32 bytes, written in base64 or hex.
func (c *Config) Key() ([]byte, error) {
	for _, decode := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := decode(c.SecretKey); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("want 32 random bytes in base64 or hex (for example: openssl rand -base64 32)")
}

// redact hides the password in a URL, for error messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// EmbeddingModelName is the configured embedding model, or the provider's
// usual one.
func (c *Config) EmbeddingModelName() string {
	if c.EmbeddingModel != "" {
		return c.EmbeddingModel
	}
	switch c.EmbeddingProvider {
	case EmbedOpenAI:
		return "text-embedding-3-small"
	case EmbedOllama:
		return "nomic-embed-text"
	}
	return ""
}

// ChatModelName is the configured chat model, or the provider's usual one
// ("" for the extractive answerer, which has none).
func (c *Config) ChatModelName() string {
	if c.ChatModel != "" || c.ChatProvider == ChatExtractive {
		return c.ChatModel
	}
	if c.ChatProvider == ChatOllama {
		return "llama3.2"
	}
	return "gpt-4o-mini"
}

// defaultDimensions is EMBEDDING_DIMENSIONS when unset: the widest vectors
// for the offline embedder, text-embedding-3-small's own size for OpenAI, and
// the model's own size (learnt from its first answer) for Ollama.
func (c *Config) defaultDimensions() int {
	switch c.EmbeddingProvider {
	case EmbedOpenAI:
		return 1536
	case EmbedOllama:
		return 0
	}
	return schema.VectorDims
}

// HTTPS reports whether silo is served over https, which makes cookies
// Secure and turns dev sign-in off.
func (c *Config) HTTPS() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// DevLoginEnabled reports whether the email-only sign-in route exists.
func (c *Config) DevLoginEnabled() bool { return c.DevLogin && !c.HTTPS() }

// GoogleEnabled reports whether sign-in with Google is configured.
func (c *Config) GoogleEnabled() bool { return c.GoogleClientID != "" }

// IsAdmin reports whether email is listed in ADMIN_EMAILS.
func (c *Config) IsAdmin(email string) bool {
	for _, e := range c.AdminEmails {
		if strings.EqualFold(e, email) {
			return true
		}
	}
	return false
}

// parser reads variables and collects one error per bad variable.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) int(name string, def int) int {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not a whole number", name, v))
		return def
	}
	return n
}

func (p *parser) bool(name string, def bool) bool {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not true or false", name, v))
		return def
	}
	return b
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not a duration such as 60s", name, v))
		return def
	}
	return d
}

// list splits a comma-separated list of e-mail addresses, lower-cased.
func (p *parser) list(name string) []string {
	out := p.rawList(name)
	for i := range out {
		out[i] = strings.ToLower(out[i])
	}
	return out
}

// rawList splits a comma-separated list, keeping case.
func (p *parser) rawList(name string) []string {
	var out []string
	for _, s := range strings.Split(p.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	v := p.str(name, "info")
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not debug, info, warn or error", name, v))
		return slog.LevelInfo
	}
	return l
}
