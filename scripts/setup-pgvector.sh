#!/usr/bin/env bash
# Installs the pgvector extension into the local PostgreSQL server (run as root).
# pgvector is not in Debian bookworm, so this builds it from Debian trixie's
# source package: a deb-src-only trixie entry (no binary package comes from
# trixie), postgresql-server-dev-<major>, then make && make install.
# Idempotent: exits at once when vector.control is already installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# Major version of the running server; the installed cluster if it is down.
if num=$(psql -h 127.0.0.1 -U postgres -Atc 'show server_version_num' 2>/dev/null); then
  major=$((num / 10000))
else
  major=$(ls /etc/postgresql | sort -n | tail -1)
fi
pg_config=/usr/lib/postgresql/$major/bin/pg_config
control=/usr/share/postgresql/$major/extension/vector.control
[ -x "$pg_config" ] && control=$("$pg_config" --sharedir)/extension/vector.control

if [ -f "$control" ]; then
  echo "pgvector already installed for PostgreSQL $major ($control)"
  exit 0
fi

echo "== building pgvector for PostgreSQL $major"
src=/etc/apt/sources.list.d/silo-trixie-src.sources
if [ ! -f "$src" ]; then
  # Mirror URI of the machine's main Debian entry (the stanza naming the
  # release's own suite, not -security).
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  uri=$(awk -v RS= -v s="$codename" '
    $0 ~ "Suites:[^\n]*[[:space:]]" s "([[:space:]]|$)" {
      for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i + 1); exit }
    }' /etc/apt/sources.list.d/debian.sources)
  uri=${uri:-http://deb.debian.org/debian}
  cat >"$src" <<EOF
# Source packages only (pgvector); written by silo's scripts/setup-pgvector.sh
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential "postgresql-server-dev-$major" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
chown _apt "$work" 2>/dev/null || true # lets apt download sandboxed
apt-get source --download-only -qq pgvector
tar -xzf pgvector_*.orig.tar.gz
cd pgvector-*/
# OPTFLAGS="" avoids -march=native, so the library runs on any x86-64 CPU.
make -s -j"$(nproc)" PG_CONFIG="$pg_config" OPTFLAGS=""
make -s install PG_CONFIG="$pg_config" OPTFLAGS=""

# Verify in a throwaway database.
"$here/ensure-services.sh" >/dev/null
db=silo_pgvector_check
PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
version=$(psql -h 127.0.0.1 -U postgres -d "$db" -Atqc 'CREATE EXTENSION IF NOT EXISTS vector' \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE $db"
echo "pgvector $version installed for PostgreSQL $major"
