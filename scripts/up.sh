#!/usr/bin/env bash
# The first command: install, create the SQLite database under ./var, load the demo, print the logins,
# and start the web server and the background worker together.
# Environment: CAIWEI_PORT (8000), CAIWEI_HOST (127.0.0.1), CAIWEI_VAR (./var), DATABASE_URL (SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
export CAIWEI_VAR=${CAIWEI_VAR:-$PWD/var}
host=${CAIWEI_HOST:-127.0.0.1}
port=${CAIWEI_PORT:-8000}

echo "== 初始化数据库"
.venv/bin/caiwei migrate --noinput --verbosity 0
.venv/bin/caiwei accounts demo
echo "== 载入演练库（盟本级与 3 个旗县，约 2 万笔支付，每类故障一处）"
.venv/bin/caiwei sandbox demo --if-missing
.venv/bin/caiwei checks sandbox
echo
echo "财维地址：http://${host}:${port}/"
exec .venv/bin/caiwei serve --host "$host" --port "$port"
