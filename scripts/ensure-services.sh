#!/usr/bin/env bash
# Makes sure the local PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306)
# answer, starting whichever does not; waits up to 30 s, fails loudly otherwise.
# Idempotent: does nothing when both already answer.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
my_up() { mariadb-admin -h 127.0.0.1 -P 3306 -uroot --silent ping >/dev/null 2>&1; }

if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start || true
fi
if ! my_up; then
  echo "starting MariaDB"
  install -d -o mysql -g mysql /run/mysqld # /run may have been emptied by a reboot
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi

for _ in $(seq 60); do
  pg_up && my_up && { echo "PostgreSQL and MariaDB are up"; exit 0; }
  sleep 0.5
done
pg_up || echo "ERROR: PostgreSQL does not answer on 127.0.0.1:5432" >&2
my_up || echo "ERROR: MariaDB does not answer on 127.0.0.1:3306" >&2
exit 1
