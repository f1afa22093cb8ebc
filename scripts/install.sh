#!/usr/bin/env bash
# Installs what Caiwei needs into this checkout: a virtual environment, the Python packages, and the
# front-end packages from the npm registry. Safe to run again. Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

if [ ! -x .venv/bin/python ]; then
  echo "== 创建虚拟环境 .venv"
  "$PYTHON" -m venv .venv
fi
echo "== 安装 Python 依赖"
# This machine's pip configuration names local mirrors that may be absent; their warnings are noise.
pipq() { .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pipq install --quiet --upgrade pip
pipq install --quiet -e ".${extras}"

echo "== 安装前端依赖（npm 仓库）"
if ! command -v npm >/dev/null 2>&1; then
  echo "需要 Node.js 与 npm（Debian：apt-get install nodejs npm）" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null

# Charts in Word reports need a CJK font (Debian's fonts-noto-cjk); the PDF of the monthly report is laid out by
# WeasyPrint on Pango (Debian's libpango-1.0-0 and libpangoft2-1.0-0).
need=()
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null | head -1)" ]; then
  need+=(fonts-noto-cjk)
fi
libs=$(ldconfig -p 2>/dev/null || true)  # not piped into grep -q: with pipefail its early exit fails the pipe
if [[ "$libs" != *"libpangoft2-1.0.so.0"* ]]; then
  need+=(libpango-1.0-0 libpangoft2-1.0-0)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== 安装 ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) || \
      echo "未能安装 ${need[*]}：报表图表中的中文或 PDF 月报可能不可用" >&2
  else
    echo "缺少 ${need[*]}：请用系统包管理器安装，否则报表图表中的中文或 PDF 月报不可用" >&2
  fi
fi

# The SFTP intake tests of reconciliation run Debian's OpenSSH server on loopback (started and stopped by the tests).
if [ -n "$extras" ] && [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== 安装 Debian 的 openssh-server（对账 SFTP 取件测试用）"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
  else
    echo "缺少 /usr/sbin/sshd：请安装 openssh-server，否则对账 SFTP 取件测试无法运行" >&2
  fi
fi

# The monitoring probe tests run Debian's Prometheus and node_exporter on loopback (started and stopped by the tests).
if [ -n "$extras" ] && { ! command -v prometheus >/dev/null || ! command -v prometheus-node-exporter >/dev/null; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== 安装 Debian 的 prometheus 与 prometheus-node-exporter（监控探测测试用）"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-node-exporter >/dev/null
    # Debian starts both as services on their default ports; the tests start their own on free ports.
    for unit in prometheus prometheus-node-exporter; do
      (command -v systemctl >/dev/null && systemctl disable --now "$unit" >/dev/null 2>&1) || true
    done
  else
    echo "缺少 prometheus、prometheus-node-exporter：请安装，否则监控的主机与 PromQL 探测测试无法运行" >&2
  fi
fi
# The RabbitMQ probes read queue depth and consumers from the management HTTP API (port 15672).
if [ -n "$extras" ] && command -v rabbitmq-plugins >/dev/null 2>&1; then
  rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || \
    rabbitmq-plugins enable --offline rabbitmq_management >/dev/null 2>&1 || true
fi

mkdir -p var
.venv/bin/caiwei collectstatic --noinput --verbosity 0
