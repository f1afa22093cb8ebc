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
# One process by default: pytest-django puts the tests that flush the database (transactional ones) last, which
# keeps the rows of data migrations (business calendars) for the others; with xdist a worker may run a flushing
# file first. CAIWEI_TEST_WORKERS=2 runs two workers for a quick local check.
.venv/bin/pytest -p no:cacheprovider -n "${CAIWEI_TEST_WORKERS:-0}" --dist loadfile "$@"

echo "== pytest 审计链（SQLite）"
sqlite_db=$(mktemp --suffix=.sqlite3)
trap 'rm -f "$sqlite_db"' EXIT
DATABASE_URL=sqlite:///$sqlite_db .venv/bin/pytest -p no:cacheprovider src/caiwei/audit -q
