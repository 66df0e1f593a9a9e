package config_test

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"silo/config"
)

// env is a fake environment: a getenv that looks variables up in a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// defaults is the configuration an empty environment gives.
func defaults(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Parse(env(nil))
	if err != nil {
		t.Fatalf("Parse of an empty environment: got error %v, want none", err)
	}
	return *c
}

func TestParseDefaults(t *testing.T) {
	c := defaults(t)
	tests := []struct {
		field     string
		got, want any
	}{
		{"Port", c.Port, 8080},
		{"BaseURL", c.BaseURL, "http://localhost:8080"},
		{"DataDir", c.DataDir, "./data"},
		{"DatabaseURL", c.DatabaseURL, "sqlite://data/silo.db"},
		{"GoogleClientID", c.GoogleClientID, ""},
		{"GoogleClientSecret", c.GoogleClientSecret, ""},
		{"DevLogin", c.DevLogin, false},
		{"AdminEmails", len(c.AdminEmails), 0},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"LogFormat", c.LogFormat, "text"},
		{"MigrateOnStart", c.MigrateOnStart, false},
		{"AtlasBin", c.AtlasBin, ""},
		{"GoogleAuthURL", c.GoogleAuthURL, "https://accounts.google.com/o/oauth2/v2/auth"},
		{"GoogleTokenURL", c.GoogleTokenURL, "https://oauth2.googleapis.com/token"},
		{"GoogleUserinfoURL", c.GoogleUserinfoURL, "https://openidconnect.googleapis.com/v1/userinfo"},
		{"Port is DefaultPort", c.Port, config.DefaultPort},
		{"BaseURL is DefaultBaseURL", c.BaseURL, config.DefaultBaseURL},
		{"DataDir is DefaultDataDir", c.DataDir, config.DefaultDataDir},
		{"ChatProvider", c.ChatProvider, config.ChatExtractive},
		{"ChatModel", c.ChatModel, ""},
		{"ChatModelName", c.ChatModelName(), ""},
		{"ChatTimeout", c.ChatTimeout, 60 * time.Second},
		{"ChatTopK", c.ChatTopK, 5},
		{"ChatHistoryTurns", c.ChatHistoryTurns, 6},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
	if e, err := c.Engine(); e != config.SQLite || err != nil {
		t.Errorf("Engine of the default DATABASE_URL: got %q, %v; want %q, nil", e, err, config.SQLite)
	}
	if c.HTTPS() || c.DevLoginEnabled() || c.GoogleEnabled() {
		t.Errorf("got HTTPS %v, DevLoginEnabled %v, GoogleEnabled %v; want all false by default",
			c.HTTPS(), c.DevLoginEnabled(), c.GoogleEnabled())
	}
}

// TestParseEachVariable sets one variable at a time and checks that it
// changes what it should, and nothing else.
func TestParseEachVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(c *config.Config) // applied to the defaults
	}{
		{"PORT", map[string]string{"PORT": "9090"}, func(c *config.Config) { c.Port = 9090 }},
		{"PORT with spaces", map[string]string{"PORT": " 9090 "}, func(c *config.Config) { c.Port = 9090 }},
		{"PORT lowest", map[string]string{"PORT": "1"}, func(c *config.Config) { c.Port = 1 }},
		{"PORT highest", map[string]string{"PORT": "65535"}, func(c *config.Config) { c.Port = 65535 }},
		{"BASE_URL https", map[string]string{"BASE_URL": "https://silo.example.com"}, func(c *config.Config) { c.BaseURL = "https://silo.example.com" }},
		{"BASE_URL trailing slashes", map[string]string{"BASE_URL": "http://127.0.0.1:3000//"}, func(c *config.Config) { c.BaseURL = "http://127.0.0.1:3000" }},
		{"DATA_DIR", map[string]string{"DATA_DIR": "/var/lib/silo"}, func(c *config.Config) {
			c.DataDir = "/var/lib/silo"
			c.DatabaseURL = "sqlite:///var/lib/silo/silo.db"
		}},
		{"DATA_DIR only whitespace falls back to the default", map[string]string{"DATA_DIR": "  \t "}, func(*config.Config) {}},
		{"DATA_DIR with a DATABASE_URL", map[string]string{"DATA_DIR": "/srv", "DATABASE_URL": "postgres://db/silo"}, func(c *config.Config) {
			c.DataDir = "/srv"
			c.DatabaseURL = "postgres://db/silo"
		}},
		{"DATABASE_URL postgres", map[string]string{"DATABASE_URL": "postgres://u:p@db:5432/silo?sslmode=disable"}, func(c *config.Config) { c.DatabaseURL = "postgres://u:p@db:5432/silo?sslmode=disable" }},
		{"DATABASE_URL postgresql", map[string]string{"DATABASE_URL": "postgresql://db/silo"}, func(c *config.Config) { c.DatabaseURL = "postgresql://db/silo" }},
		{"DATABASE_URL mysql", map[string]string{"DATABASE_URL": "mysql://root:pw@db:3306/silo"}, func(c *config.Config) { c.DatabaseURL = "mysql://root:pw@db:3306/silo" }},
		{"DATABASE_URL sqlite", map[string]string{"DATABASE_URL": "sqlite:///tmp/control.db"}, func(c *config.Config) { c.DatabaseURL = "sqlite:///tmp/control.db" }},
		{"DATABASE_URL only whitespace falls back to the default", map[string]string{"DATABASE_URL": "   "}, func(*config.Config) {}},
		{"GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET", map[string]string{"GOOGLE_CLIENT_ID": "id.apps", "GOOGLE_CLIENT_SECRET": "s3cret"}, func(c *config.Config) {
			c.GoogleClientID = "id.apps"
			c.GoogleClientSecret = "s3cret"
		}},
		{"DEV_LOGIN true", map[string]string{"DEV_LOGIN": "true"}, func(c *config.Config) { c.DevLogin = true }},
		{"DEV_LOGIN 1", map[string]string{"DEV_LOGIN": "1"}, func(c *config.Config) { c.DevLogin = true }},
		{"DEV_LOGIN TRUE", map[string]string{"DEV_LOGIN": "TRUE"}, func(c *config.Config) { c.DevLogin = true }},
		{"DEV_LOGIN false", map[string]string{"DEV_LOGIN": "false"}, func(*config.Config) {}},
		{"ADMIN_EMAILS", map[string]string{"ADMIN_EMAILS": " Ann@Example.COM, ,bob@example.com ,"}, func(c *config.Config) {
			c.AdminEmails = []string{"ann@example.com", "bob@example.com"}
		}},
		{"LOG_LEVEL debug", map[string]string{"LOG_LEVEL": "debug"}, func(c *config.Config) { c.LogLevel = slog.LevelDebug }},
		{"LOG_LEVEL info", map[string]string{"LOG_LEVEL": "info"}, func(*config.Config) {}},
		{"LOG_LEVEL warn", map[string]string{"LOG_LEVEL": "warn"}, func(c *config.Config) { c.LogLevel = slog.LevelWarn }},
		{"LOG_LEVEL error", map[string]string{"LOG_LEVEL": "error"}, func(c *config.Config) { c.LogLevel = slog.LevelError }},
		{"LOG_LEVEL upper case", map[string]string{"LOG_LEVEL": "DEBUG"}, func(c *config.Config) { c.LogLevel = slog.LevelDebug }},
		{"LOG_FORMAT json", map[string]string{"LOG_FORMAT": "json"}, func(c *config.Config) { c.LogFormat = "json" }},
		{"LOG_FORMAT text", map[string]string{"LOG_FORMAT": "text"}, func(*config.Config) {}},
		{"MIGRATE_ON_START", map[string]string{"MIGRATE_ON_START": "true"}, func(c *config.Config) { c.MigrateOnStart = true }},
		{"ATLAS_BIN", map[string]string{"ATLAS_BIN": "/opt/atlas/bin/atlas"}, func(c *config.Config) { c.AtlasBin = "/opt/atlas/bin/atlas" }},
		{"CHAT_PROVIDER ollama", map[string]string{"CHAT_PROVIDER": "ollama"}, func(c *config.Config) { c.ChatProvider = config.ChatOllama }},
		{"CHAT_PROVIDER openai on another server", map[string]string{"CHAT_PROVIDER": "openai", "OPENAI_BASE_URL": "http://vllm:8000/v1"}, func(c *config.Config) {
			c.ChatProvider = config.ChatOpenAI
			c.OpenAIBaseURL = "http://vllm:8000/v1"
		}},
		{"CHAT_MODEL", map[string]string{"CHAT_MODEL": "qwen2.5"}, func(c *config.Config) { c.ChatModel = "qwen2.5" }},
		{"CHAT_TIMEOUT", map[string]string{"CHAT_TIMEOUT": "90s"}, func(c *config.Config) { c.ChatTimeout = 90 * time.Second }},
		{"CHAT_TOP_K", map[string]string{"CHAT_TOP_K": "50"}, func(c *config.Config) { c.ChatTopK = 50 }},
		{"CHAT_HISTORY_TURNS", map[string]string{"CHAT_HISTORY_TURNS": "1"}, func(c *config.Config) { c.ChatHistoryTurns = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(env(tt.env))
			if err != nil {
				t.Fatalf("Parse(%q): got error %v, want none", tt.env, err)
			}
			want := defaults(t)
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse(%q):\ngot  %+v\nwant %+v", tt.env, *got, want)
			}
		})
	}
}

func TestEngine(t *testing.T) {
	tests := []struct {
		url     string
		want    config.Engine
		wantErr bool
	}{
		{"sqlite://data/silo.db", config.SQLite, false},
		{"sqlite:///abs/silo.db?_fk=1", config.SQLite, false},
		{"postgres://u@db:5432/silo", config.Postgres, false},
		{"postgresql://u@db/silo?sslmode=disable", config.Postgres, false},
		{"mysql://root@127.0.0.1:3306/silo", config.MySQL, false},
		{"", "", true},
		{"nonsense", "", true},
		{"sqlite://", "", true},
		{"redis://x", "", true},
		{"https://db.example.com", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c := &config.Config{DatabaseURL: tt.url}
			got, err := c.Engine()
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Engine of %q: got %q, error %v; want %q, error %v", tt.url, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestParseRejectsBadVariable checks that each bad variable gives exactly one
// error, and that it names the variable.
func TestParseRejectsBadVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // what the error must mention; the first is the variable
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, []string{"PORT", `"abc"`}},
		{"PORT zero", map[string]string{"PORT": "0"}, []string{"PORT", "0"}},
		{"PORT negative", map[string]string{"PORT": "-1"}, []string{"PORT", "-1"}},
		{"PORT too big", map[string]string{"PORT": "70000"}, []string{"PORT", "70000"}},
		{"BASE_URL ftp", map[string]string{"BASE_URL": "ftp://x"}, []string{"BASE_URL", "ftp://x"}},
		{"BASE_URL not a URL", map[string]string{"BASE_URL": "notaurl"}, []string{"BASE_URL", "notaurl"}},
		{"BASE_URL without host", map[string]string{"BASE_URL": "http://"}, []string{"BASE_URL"}},
		{"DATABASE_URL redis", map[string]string{"DATABASE_URL": "redis://x"}, []string{"DATABASE_URL", "redis"}},
		{"DATABASE_URL nonsense", map[string]string{"DATABASE_URL": "nonsense"}, []string{"DATABASE_URL"}},
		{"DEV_LOGIN maybe", map[string]string{"DEV_LOGIN": "maybe"}, []string{"DEV_LOGIN", `"maybe"`}},
		{"MIGRATE_ON_START yesplease", map[string]string{"MIGRATE_ON_START": "yesplease"}, []string{"MIGRATE_ON_START", `"yesplease"`}},
		{"LOG_LEVEL loud", map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL", `"loud"`}},
		{"LOG_FORMAT xml", map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT", `"xml"`}},
		{"MEMORY_LIMIT_MB zero", map[string]string{"MEMORY_LIMIT_MB": "0"}, []string{"MEMORY_LIMIT_MB"}},
		{"EXTRACT_MEMORY_MB too small", map[string]string{"EXTRACT_MEMORY_MB": "64"}, []string{"EXTRACT_MEMORY_MB"}},
		{"EMBEDDING_PROVIDER unknown", map[string]string{"EMBEDDING_PROVIDER": "magic"}, []string{"EMBEDDING_PROVIDER"}},
		{"EMBEDDING_DIMENSIONS too wide", map[string]string{"EMBEDDING_DIMENSIONS": "4096"}, []string{"EMBEDDING_DIMENSIONS"}},
		{"CHAT_PROVIDER unknown", map[string]string{"CHAT_PROVIDER": "gpt"}, []string{"CHAT_PROVIDER", `"gpt"`}},
		{"CHAT_PROVIDER openai without a key", map[string]string{"CHAT_PROVIDER": "openai"}, []string{"OPENAI_API_KEY", "CHAT_PROVIDER"}},
		{"CHAT_TIMEOUT not a duration", map[string]string{"CHAT_TIMEOUT": "60"}, []string{"CHAT_TIMEOUT", `"60"`}},
		{"CHAT_TIMEOUT zero", map[string]string{"CHAT_TIMEOUT": "0s"}, []string{"CHAT_TIMEOUT"}},
		{"CHAT_TOP_K zero", map[string]string{"CHAT_TOP_K": "0"}, []string{"CHAT_TOP_K", "0"}},
		{"CHAT_TOP_K too many", map[string]string{"CHAT_TOP_K": "51"}, []string{"CHAT_TOP_K", "51"}},
		{"CHAT_HISTORY_TURNS zero", map[string]string{"CHAT_HISTORY_TURNS": "0"}, []string{"CHAT_HISTORY_TURNS"}},
		{"CHUNK_SIZE too big", map[string]string{"CHUNK_SIZE": "5000"}, []string{"CHUNK_SIZE"}},
		{"TENANT_DATABASE_URL not postgres", map[string]string{"TENANT_DATABASE_URL": "mysql://x/y", "SECRET_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, []string{"TENANT_DATABASE_URL"}},
		{"SECRET_KEY missing for postgres tenants", map[string]string{"TENANT_DATABASE_URL": "postgres://x/y"}, []string{"SECRET_KEY"}},
		{"SECRET_KEY short", map[string]string{"SECRET_KEY": "abc"}, []string{"SECRET_KEY"}},
		{"GOOGLE_CLIENT_ID without GOOGLE_CLIENT_SECRET", map[string]string{"GOOGLE_CLIENT_ID": "id"}, []string{"GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"}},
		{"GOOGLE_CLIENT_SECRET without GOOGLE_CLIENT_ID", map[string]string{"GOOGLE_CLIENT_SECRET": "s"}, []string{"GOOGLE_CLIENT_SECRET", "GOOGLE_CLIENT_ID"}},
		{"ADMIN_EMAILS not an address", map[string]string{"ADMIN_EMAILS": "notanemail"}, []string{"ADMIN_EMAILS", `"notanemail"`}},
		{"ADMIN_EMAILS one bad of two", map[string]string{"ADMIN_EMAILS": "ann@example.com, bob"}, []string{"ADMIN_EMAILS", `"bob"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(env(tt.env))
			if err == nil {
				t.Fatalf("Parse(%q): got no error, want one naming %s", tt.env, tt.want[0])
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 {
				t.Errorf("Parse(%q): got %d errors %q, want 1", tt.env, len(lines), lines)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q): got error %q, want it to mention %s", tt.env, err, w)
				}
			}
		})
	}
}

func TestParseReportsEveryBadVariable(t *testing.T) {
	bad := map[string]string{
		"PORT":             "abc",
		"BASE_URL":         "ftp://x",
		"DATABASE_URL":     "redis://x",
		"DEV_LOGIN":        "maybe",
		"MIGRATE_ON_START": "yesplease",
		"LOG_LEVEL":        "loud",
		"LOG_FORMAT":       "xml",
		"GOOGLE_CLIENT_ID": "id-without-secret",
		"ADMIN_EMAILS":     "notanemail",
	}
	_, err := config.Parse(env(bad))
	if err == nil {
		t.Fatal("Parse of nine bad variables: got no error, want one")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(bad) {
		t.Errorf("got %d errors, want %d:\n%v", len(lines), len(bad), err)
	}
	for name := range bad {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, name+": ") {
				found = true
			}
		}
		if !found {
			t.Errorf("got errors\n%v\nwant one starting with %q", err, name+": ")
		}
	}
}

// TestValidate covers what Parse cannot produce from the environment, for
// configurations that tests and callers build directly.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   string // the variable named, or "" for no error
	}{
		{"defaults", func(*config.Config) {}, ""},
		{"empty DataDir", func(c *config.Config) { c.DataDir = "" }, "DATA_DIR"},
		{"empty DatabaseURL", func(c *config.Config) { c.DatabaseURL = "" }, "DATABASE_URL"},
		{"port 0", func(c *config.Config) { c.Port = 0 }, "PORT"},
		{"empty LogFormat", func(c *config.Config) { c.LogFormat = "" }, "LOG_FORMAT"},
		{"admin without @", func(c *config.Config) { c.AdminEmails = []string{"root"} }, "ADMIN_EMAILS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults(t)
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want+": ")):
				t.Errorf("Validate: got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestChatModelName(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"CHAT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-x"}, "gpt-4o-mini"},
		{map[string]string{"CHAT_PROVIDER": "ollama"}, "llama3.2"},
		{map[string]string{"CHAT_PROVIDER": "ollama", "CHAT_MODEL": "mistral"}, "mistral"},
	} {
		c, err := config.Parse(env(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ChatModelName(); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestSignInSwitches(t *testing.T) {
	tests := []struct {
		env                            map[string]string
		wantHTTPS, wantDev, wantGoogle bool
	}{
		{map[string]string{}, false, false, false},
		{map[string]string{"DEV_LOGIN": "true"}, false, true, false},
		{map[string]string{"DEV_LOGIN": "true", "BASE_URL": "http://silo.example.com"}, false, true, false},
		{map[string]string{"DEV_LOGIN": "true", "BASE_URL": "https://silo.example.com"}, true, false, false},
		{map[string]string{"BASE_URL": "https://silo.example.com"}, true, false, false},
		{map[string]string{"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "s"}, false, false, true},
		{map[string]string{"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "s", "DEV_LOGIN": "true"}, false, true, true},
	}
	for _, tt := range tests {
		c, err := config.Parse(env(tt.env))
		if err != nil {
			t.Fatalf("Parse(%q): got error %v, want none", tt.env, err)
		}
		if got := c.HTTPS(); got != tt.wantHTTPS {
			t.Errorf("Parse(%q).HTTPS(): got %v, want %v", tt.env, got, tt.wantHTTPS)
		}
		if got := c.DevLoginEnabled(); got != tt.wantDev {
			t.Errorf("Parse(%q).DevLoginEnabled(): got %v, want %v", tt.env, got, tt.wantDev)
		}
		if got := c.GoogleEnabled(); got != tt.wantGoogle {
			t.Errorf("Parse(%q).GoogleEnabled(): got %v, want %v", tt.env, got, tt.wantGoogle)
		}
	}
}

func TestIsAdmin(t *testing.T) {
	c, err := config.Parse(env(map[string]string{"ADMIN_EMAILS": "Ann@Example.com,bob@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		email string
		want  bool
	}{
		{"ann@example.com", true},
		{"ANN@EXAMPLE.COM", true},
		{"Ann@Example.com", true},
		{"bob@example.com", true},
		{"carol@example.com", false},
		{"ann@example.co", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := c.IsAdmin(tt.email); got != tt.want {
			t.Errorf("IsAdmin(%q): got %v, want %v", tt.email, got, tt.want)
		}
	}
	none, err := config.Parse(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if none.IsAdmin("ann@example.com") {
		t.Error("IsAdmin with no ADMIN_EMAILS: got true, want false")
	}
}
