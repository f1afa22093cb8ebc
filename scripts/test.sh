#!/usr/bin/env bash
# The second command: install everything and run the whole suite — ruff, a smoke run of scripts/up.sh on
# SQLite, then pytest on PostgreSQL including the browser tests on Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh --test
bash scripts/services.sh

if [ ! -x /usr/bin/chromium ]; then
  echo "== 安装 Debian 的 Chromium 与中文字体"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .

echo "== 冒烟：scripts/up.sh（SQLite）"
.venv/bin/python scripts/smoke.py

echo "== pytest（PostgreSQL）"
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/caiwei}
# Two worker processes by default (the machines have two cores; the serial suite ran 73 minutes in CI). Each worker
# has its own test database; a transactional test flushes only its worker's, and the conftest puts the rows of data
# migrations that every test needs (business calendars) back. CAIWEI_TEST_WORKERS=0 runs in one process.
.venv/bin/pytest -p no:cacheprovider -n "${CAIWEI_TEST_WORKERS:-2}" --dist loadfile "$@"

echo "== pytest 审计链（SQLite）"
sqlite_db=$(mktemp --suffix=.sqlite3)
trap 'rm -f "$sqlite_db"' EXIT
DATABASE_URL=sqlite:///$sqlite_db .venv/bin/pytest -p no:cacheprovider src/caiwei/audit -q
