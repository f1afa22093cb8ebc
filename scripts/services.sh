#!/usr/bin/env bash
# Starts this machine's PostgreSQL, MariaDB, Redis and RabbitMQ when they are down (the tests use them).
set -uo pipefail

up() { timeout 3 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

start() {
  local port=$1 name=$2; shift 2
  up "$port" && return 0
  echo "== 启动 $name"
  "$@" >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 1; done
  echo "$name 未能在 127.0.0.1:$port 启动" >&2
  return 1
}

rc=0
start 5432 PostgreSQL pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -1)" main start || rc=1
start 3306 MariaDB start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || rc=1
start 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log || rc=1
start 5672 RabbitMQ rabbitmq-server -detached || rc=1
exit $rc
