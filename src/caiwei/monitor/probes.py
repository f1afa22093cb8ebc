"""Probe engine 探测引擎: one function per kind of monitored thing, all on asyncio, each under its own timeout.

Plain Python (no Django): the services, the tests and the bench call ``run_probe(Probe(...))`` or run many at once
with ``Scheduler``. A probe never raises: a failure (refused, timed out, bad answer) is a ``ProbeResult`` with
``ok=False`` and a Chinese message, so one dead target never blocks or breaks the others.

Network probes (HTTP(S), TLS, TCP, Redis, the RabbitMQ management API, node_exporter, Prometheus) are native
asyncio; the ones whose client library is blocking (databases through SQLAlchemy, SFTP through paramiko, FTP
through ftplib, SSH) run in a bounded thread pool and are given up on after the timeout (their sockets carry the
same timeout, so the thread ends by itself soon after).

Every result carries ``metrics`` (name → number); ``up`` is 1 or 0 for every kind. The alert rules
(``alerts.py``) compare these metrics with thresholds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import heapq
import json
import math
import os
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

KINDS = {
    "http": "HTTP(S) 服务",
    "tcp": "TCP 端口",
    "tls": "TLS 证书",
    "database": "数据库",
    "rabbitmq": "RabbitMQ 队列",
    "redis": "Redis",
    "sftp": "SFTP 文件目录",
    "ftp": "FTP 文件目录",
    "host": "主机（node_exporter）",
    "host_ssh": "主机（SSH）",
    "promql": "PromQL 查询",
    "freshness": "接口时效（按业务日历）",
    "sequence": "报文序号连续性",
    "heartbeat": "后台任务心跳",
}
# The main number of each kind (shown on the board and charted in the history).
PRIMARY = {
    "http": "latency_ms",
    "tcp": "latency_ms",
    "tls": "cert_days",
    "database": "latency_ms",
    "rabbitmq": "messages",
    "redis": "used_memory_mb",
    "sftp": "latest_age_s",
    "ftp": "latest_age_s",
    "host": "disk_used_pct",
    "host_ssh": "disk_used_pct",
    "promql": "value",
    "freshness": "count",
    "sequence": "gaps",
    "heartbeat": "since_ping_s",
}
METRIC_LABELS = {
    "up": "可用",
    "latency_ms": "响应时间（毫秒）",
    "status": "HTTP 状态码",
    "text_ok": "含预期文字",
    "cert_days": "证书剩余天数",
    "connections": "连接数",
    "replication_lag_s": "复制延迟（秒）",
    "messages": "队列积压",
    "consumers": "消费者数",
    "unacked": "未确认",
    "used_memory_mb": "内存（MB）",
    "clients": "客户端数",
    "uptime_s": "运行时长（秒）",
    "latest_age_s": "最新文件距今（秒）",
    "files": "文件数",
    "cpu_busy_pct": "CPU 使用率（%）",
    "load_per_cpu": "每核负载",
    "mem_used_pct": "内存使用率（%）",
    "disk_used_pct": "磁盘使用率（%）",
    "value": "查询值",
    "count": "窗口内收到",
    "expected": "应有业务",
    "fresh": "时效正常",
    "gaps": "缺号数",
    "duplicates": "重号数",
    "since_ping_s": "距上次心跳（秒）",
}
BLOCKING = {"database", "sftp", "ftp", "host_ssh"}
MAX_BODY = 1 << 20


@dataclass
class Probe:
    """What to probe: ``kind``, its settings (``config``, no secret in it), the unsealed ``secret`` (a password, a
    bearer token) and the timeout in seconds."""

    kind: str
    config: dict = field(default_factory=dict)
    secret: str = ""
    timeout: float = 10.0
    key: object = None  # the caller's handle (an item id); passed back in the result


@dataclass
class ProbeResult:
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    latency_ms: float | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    key: object = None

    def primary(self, kind: str) -> float | None:
        return self.metrics.get(PRIMARY.get(kind, ""), None)


class ProbeError(Exception):
    """A failed probe with its Chinese explanation."""


# --- plumbing ---------------------------------------------------------------------------------------------------

_POOL: ThreadPoolExecutor | None = None


def thread_pool(size: int = 16) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=size, thread_name_prefix="caiwei-probe")
    return _POOL


async def _blocking(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(thread_pool(), fn, *args)


def _explain(exc: BaseException) -> str:
    if isinstance(exc, ProbeError):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "超时未应答"
    if isinstance(exc, ConnectionRefusedError):
        return "连接被拒绝（端口未监听）"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"证书校验失败：{exc.verify_message or exc}"
    import errno
    import socket

    if isinstance(exc, socket.gaierror):
        return "无法解析主机名"
    name = type(exc).__name__
    if name in ("AuthenticationException", "BadAuthenticationType"):
        return "登录被拒绝（用户名、密码或私钥不对）"
    if name in ("SSHException", "NoValidConnectionsError"):
        return "SSH 连接失败"
    if name == "error_perm":
        return f"FTP 服务器拒绝：{str(exc)[:3]}（多为登录失败或目录不存在）"
    if isinstance(exc, OSError):
        known = {
            errno.ECONNRESET: "连接被对方重置",
            errno.EHOSTUNREACH: "主机不可达",
            errno.ENETUNREACH: "网络不可达",
            errno.ENOENT: "文件或目录不存在",
            errno.EACCES: "没有访问权限",
        }
        return known.get(exc.errno, f"网络或文件错误（错误号 {exc.errno}）")
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "应答内容无法解析"
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    if name in ("OperationalError", "ProgrammingError", "DatabaseError", "InterfaceError"):
        return f"数据库连接或查询失败：{text[0][:200] if text else ''}"
    return f"探测出错：{text[0][:200] if text else name}"


async def run_probe(probe: Probe) -> ProbeResult:
    """Run one probe under its timeout; never raises."""
    fn = PROBES.get(probe.kind)
    started = time.perf_counter()
    at = datetime.now(UTC)
    if fn is None:
        return ProbeResult(False, {"up": 0}, f"未知的监控类型“{probe.kind}”", at=at, key=probe.key)
    try:
        metrics, message = await asyncio.wait_for(fn(probe), timeout=max(0.1, float(probe.timeout)))
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 — a probe reports every failure as its result
        elapsed = (time.perf_counter() - started) * 1000
        return ProbeResult(False, {"up": 0}, _explain(exc), round(elapsed, 2), at, probe.key)
    elapsed = (time.perf_counter() - started) * 1000
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and not _nan(v)}
    ok = metrics.get("up", 1.0) >= 1
    metrics.setdefault("up", 1.0 if ok else 0.0)
    return ProbeResult(ok, metrics, message, round(elapsed, 2), at, probe.key)


def _nan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def run_blocking(make_coro):
    """Run ``make_coro()`` to completion from synchronous code — in a fresh thread when this thread already runs an
    event loop (an ASGI server, a browser driver), where ``asyncio.run`` is refused."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def run_sync(probe: Probe) -> ProbeResult:
    return run_blocking(lambda: run_probe(probe))


async def run_many(probes: Iterable[Probe], concurrency: int = 50) -> list[ProbeResult]:
    gate = asyncio.Semaphore(concurrency)

    async def one(p: Probe) -> ProbeResult:
        async with gate:
            return await run_probe(p)

    return list(await asyncio.gather(*(one(p) for p in probes)))


# --- HTTP ---------------------------------------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    cert_days: float | None = None


def _cert_days(der: bytes | None) -> float | None:
    if not der:
        return None
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return round((cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400, 2)


def _ssl_context(verify: bool, cafile: str = "") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def http_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict | None = None,
    body: bytes = b"",
    verify: bool = True,
    cafile: str = "",
) -> HttpAnswer:
    """A minimal HTTP/1.1 client on asyncio streams (one request, Connection: close, body up to 1 MB)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"地址“{url[:80]}”不是 http:// 或 https:// 开头的网址")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    ctx = _ssl_context(verify, cafile) if tls else None
    reader, writer = await asyncio.open_connection(
        parts.hostname, port, ssl=ctx, server_hostname=parts.hostname if tls else None
    )
    try:
        cert_days = None
        if tls:
            sslobj = writer.get_extra_info("ssl_object")
            cert_days = _cert_days(sslobj.getpeercert(binary_form=True) if sslobj else None)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = {
            "Host": parts.netloc.rsplit("@", 1)[-1],
            "User-Agent": "caiwei-monitor/1",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        if parts.username:
            pair = f"{parts.username}:{parts.password or ''}".encode()
            head["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        head.update(headers or {})
        if body:
            head["Content-Length"] = str(len(body))
        lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", status_line)
        if not match:
            raise ProbeError("应答不是 HTTP 协议")
        status = int(match.group(1))
        answer_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        data = b""
        if method != "HEAD" and status not in (204, 304):
            if "chunked" in answer_headers.get("transfer-encoding", "").lower():
                chunks = []
                size_total = 0
                while size_total < MAX_BODY:
                    size_line = await reader.readline()
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    chunk = await reader.readexactly(size)
                    await reader.readline()
                    chunks.append(chunk)
                    size_total += size
                data = b"".join(chunks)
            elif "content-length" in answer_headers:
                length = min(int(answer_headers["content-length"]), MAX_BODY)
                data = await reader.readexactly(length)
            else:
                data = await reader.read(MAX_BODY)
        return HttpAnswer(status, answer_headers, data, cert_days)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _with_secret(url: str, secret: str) -> tuple[str, dict]:
    """A secret of an HTTP item: a password for the URL's user (basic) or, with no user, a bearer token."""
    if not secret:
        return url, {}
    parts = urlsplit(url)
    if parts.username:
        netloc = f"{quote(parts.username)}:{quote(secret)}@{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        return parts._replace(netloc=netloc).geturl(), {}
    return url, {"Authorization": f"Bearer {secret}"}


async def probe_http(p: Probe) -> tuple[dict, str]:
    c = p.config
    url, headers = _with_secret(c.get("url", ""), p.secret)
    started = time.perf_counter()
    answer = await http_request(
        url, verify=c.get("verify_tls", True), cafile=c.get("cafile", ""), headers=headers
    )
    latency = (time.perf_counter() - started) * 1000
    expected_status = [
        int(s) for s in str(c.get("expect_status", "200")).replace("，", ",").split(",") if s.strip()
    ]
    metrics = {"status": answer.status, "latency_ms": round(latency, 2), "cert_days": answer.cert_days}
    problems = []
    if answer.status not in expected_status:
        problems.append(f"状态码 {answer.status}，应为 {'、'.join(map(str, expected_status))}")
    if c.get("expect_text"):
        found = c["expect_text"] in answer.body.decode(c.get("encoding", "utf-8"), "replace")
        metrics["text_ok"] = 1 if found else 0
        if not found:
            problems.append(f"页面不含预期文字“{c['expect_text'][:40]}”")
    metrics["up"] = 0 if problems else 1
    message = "；".join(problems) or f"状态码 {answer.status}，{latency:.0f} 毫秒"
    if answer.cert_days is not None:
        message += f"，证书剩余 {answer.cert_days:.0f} 天"
    return metrics, message


async def probe_tls(p: Probe) -> tuple[dict, str]:
    c = p.config
    host, port = c.get("host", ""), int(c.get("port") or 443)
    if not host:
        raise ProbeError("未填写主机")
    ctx = _ssl_context(c.get("verify_tls", True), c.get("cafile", ""))
    started = time.perf_counter()
    _, writer = await asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=c.get("server_name") or host
    )
    try:
        sslobj = writer.get_extra_info("ssl_object")
        days = _cert_days(sslobj.getpeercert(binary_form=True) if sslobj else None)
    finally:
        writer.close()
    latency = (time.perf_counter() - started) * 1000
    return {"cert_days": days, "latency_ms": round(latency, 2)}, f"证书剩余 {days:.0f} 天"


async def probe_tcp(p: Probe) -> tuple[dict, str]:
    c = p.config
    host, port = c.get("host", ""), int(c.get("port") or 0)
    if not host or not port:
        raise ProbeError("未填写主机或端口")
    started = time.perf_counter()
    _, writer = await asyncio.open_connection(host, port)
    latency = (time.perf_counter() - started) * 1000
    writer.close()
    return {"latency_ms": round(latency, 2)}, f"端口 {port} 可连接，{latency:.1f} 毫秒"


# --- databases (SQLAlchemy, blocking) -------------------------------------------------------------------------------


def _database(url: str, query: str, timeout: float) -> tuple[dict, str]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    connect_args: dict = {}
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": max(1, int(timeout))}
    elif url.startswith("mysql"):
        connect_args = {"connect_timeout": max(1, int(timeout)), "read_timeout": max(1, int(timeout))}
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    metrics: dict = {}
    try:
        with engine.connect() as con:
            started = time.perf_counter()
            con.execute(sa.text(query or "SELECT 1")).fetchall()
            metrics["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            name = engine.dialect.name
            try:
                if name == "postgresql":
                    metrics["connections"] = con.execute(
                        sa.text("SELECT count(*) FROM pg_stat_activity")
                    ).scalar()
                    metrics["replication_lag_s"] = con.execute(
                        sa.text(
                            "SELECT CASE WHEN pg_is_in_recovery() THEN "
                            "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
                        )
                    ).scalar()
                elif name in ("mysql", "mariadb"):
                    row = con.execute(sa.text("SHOW GLOBAL STATUS LIKE 'Threads_connected'")).fetchone()
                    metrics["connections"] = int(row[1]) if row else None
                    try:
                        replica = con.execute(sa.text("SHOW SLAVE STATUS")).mappings().fetchone()
                    except sa.exc.SQLAlchemyError:
                        replica = None
                    if replica and replica.get("Seconds_Behind_Master") is not None:
                        metrics["replication_lag_s"] = replica["Seconds_Behind_Master"]
            except sa.exc.SQLAlchemyError:
                pass  # no right to the statistics views: the connection and the query still count
    finally:
        engine.dispose()
    extra = f"，连接数 {int(metrics['connections'])}" if metrics.get("connections") is not None else ""
    return metrics, f"查询 {metrics['latency_ms']:.1f} 毫秒{extra}"


async def probe_database(p: Probe) -> tuple[dict, str]:
    url = p.config.get("url") or ""
    if not url:
        raise ProbeError("未填写数据库连接")
    if p.secret and "@" in url and ":***@" in url:
        url = url.replace(":***@", f":{quote(p.secret, safe='')}@", 1)
    return await _blocking(_database, url, p.config.get("query", "SELECT 1"), p.timeout)


# --- RabbitMQ (management HTTP API) ------------------------------------------------------------------------------


async def probe_rabbitmq(p: Probe) -> tuple[dict, str]:
    c = p.config
    base = (c.get("api") or "http://127.0.0.1:15672").rstrip("/")
    vhost, queue = c.get("vhost", "/"), c.get("queue", "")
    if not queue:
        raise ProbeError("未填写队列名")
    user = c.get("username", "guest")
    token = base64.b64encode(f"{user}:{p.secret or c.get('password', '')}".encode()).decode()
    url = f"{base}/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}"
    answer = await http_request(
        url, headers={"Authorization": f"Basic {token}"}, verify=c.get("verify_tls", True)
    )
    if answer.status == 404:
        raise ProbeError(f"队列“{queue}”不存在")
    if answer.status == 401:
        raise ProbeError("管理接口拒绝登录（用户名或密码不对）")
    if answer.status != 200:
        raise ProbeError(f"管理接口答 {answer.status}")
    data = json.loads(answer.body)
    metrics = {
        "messages": data.get("messages", 0),
        "consumers": data.get("consumers", 0),
        "unacked": data.get("messages_unacknowledged", 0),
    }
    return metrics, (
        f"队列 {queue}：积压 {metrics['messages']}，消费者 {metrics['consumers']}，未确认 {metrics['unacked']}"
    )


# --- Redis (RESP over asyncio) --------------------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        raw = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


async def _resp_read(reader) -> bytes:
    line = await reader.readline()
    if not line:
        raise ProbeError("Redis 关闭了连接")
    if line.startswith(b"-"):
        raise ProbeError(f"Redis 报错：{line[1:].decode(errors='replace').strip()[:120]}")
    if line.startswith(b"$"):
        size = int(line[1:])
        return (await reader.readexactly(size + 2))[:-2] if size >= 0 else b""
    return line[1:].strip()


async def probe_redis(p: Probe) -> tuple[dict, str]:
    c = p.config
    host, port = c.get("host", "127.0.0.1"), int(c.get("port") or 6379)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if p.secret:
            writer.write(_resp("AUTH", *([c["username"]] if c.get("username") else []), p.secret))
            await _resp_read(reader)
        writer.write(_resp("INFO"))
        await writer.drain()
        info = {}
        for line in (await _resp_read(reader)).decode(errors="replace").splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                info[k] = v.strip()
    finally:
        writer.close()
    metrics = {
        "used_memory_mb": round(int(info.get("used_memory", 0)) / 1048576, 2),
        "clients": int(info.get("connected_clients", 0)),
        "uptime_s": int(info.get("uptime_in_seconds", 0)),
    }
    return metrics, f"内存 {metrics['used_memory_mb']} MB，客户端 {metrics['clients']}"


# --- file drops: local folder, SFTP, FTP ---------------------------------------------------------------------------


def _local_files(folder: str, pattern: str) -> list[tuple[str, float]]:
    root = Path(folder)
    if not root.is_dir():
        raise ProbeError(f"目录“{folder}”不存在")
    return [
        (e.name, e.stat().st_mtime)
        for e in os.scandir(root)
        if e.is_file() and fnmatch.fnmatch(e.name, pattern or "*")
    ]


def _sftp_files(c: dict, secret: str, timeout: float) -> list[tuple[str, float]]:
    import io

    import paramiko

    sock_host, port = c.get("host", ""), int(c.get("port") or 22)
    transport = paramiko.Transport((sock_host, port))
    transport.banner_timeout = transport.auth_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        expected = (c.get("host_key") or "").strip()
        if expected:
            key = transport.get_remote_server_key()
            import hashlib

            seen = "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
            if seen != expected:
                raise ProbeError(f"服务器指纹 {seen} 与登记的不符，拒绝连接")
        if secret.startswith("-----BEGIN"):
            pkey = None
            for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
                try:
                    pkey = cls.from_private_key(io.StringIO(secret))
                    break
                except paramiko.SSHException:
                    continue
            if pkey is None:
                raise ProbeError("私钥无法读取")
            transport.auth_publickey(c.get("username", ""), pkey)
        else:
            transport.auth_password(c.get("username", ""), secret)
        sftp = paramiko.SFTPClient.from_transport(transport)
        sftp.get_channel().settimeout(timeout)
        return [
            (a.filename, float(a.st_mtime or 0))
            for a in sftp.listdir_attr(c.get("directory") or ".")
            if fnmatch.fnmatch(a.filename, c.get("pattern") or "*") and not str(a.longname).startswith("d")
        ]
    finally:
        transport.close()


def _ftp_files(c: dict, secret: str, timeout: float) -> list[tuple[str, float]]:
    import ftplib

    # Plain FTP is what many agent banks and units still offer for file drops; FTPS when the item says tls.
    ftp = ftplib.FTP_TLS(timeout=timeout) if c.get("tls") else ftplib.FTP(timeout=timeout)  # noqa: S321
    try:
        ftp.connect(c.get("host", ""), int(c.get("port") or 21))
        ftp.login(c.get("username") or "anonymous", secret or "")
        if c.get("tls"):
            ftp.prot_p()
        if c.get("directory"):
            ftp.cwd(c["directory"])
        out = []
        try:
            entries = list(ftp.mlsd(facts=["type", "modify"]))
        except ftplib.error_perm:
            entries = [(n, {"type": "file"}) for n in ftp.nlst()]
        for name, facts in entries:
            if facts.get("type", "file") != "file" or not fnmatch.fnmatch(name, c.get("pattern") or "*"):
                continue
            modify = facts.get("modify")
            if not modify:
                modify = ftp.sendcmd(f"MDTM {name}").split()[-1]
            stamp = datetime.strptime(modify[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            out.append((name, stamp.timestamp()))
        return out
    finally:
        try:
            ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            ftp.close()


async def list_files(source: str, c: dict, secret: str, timeout: float) -> list[tuple[str, float]]:
    if source == "sftp":
        return await _blocking(_sftp_files, c, secret, timeout)
    if source == "ftp":
        return await _blocking(_ftp_files, c, secret, timeout)
    if source == "dir":
        return await _blocking(_local_files, c.get("directory", ""), c.get("pattern", "*"))
    raise ProbeError(f"未知的文件来源“{source}”")


def _file_metrics(files: list[tuple[str, float]], now: float) -> tuple[dict, str]:
    if not files:
        return {"files": 0}, "目录中没有符合文件名模式的文件"
    name, newest = max(files, key=lambda f: f[1])
    age = max(0.0, now - newest)
    return {"files": len(files), "latest_age_s": round(age, 1)}, f"最新文件 {name}，{age / 60:.0f} 分钟前"


async def probe_sftp(p: Probe) -> tuple[dict, str]:
    return _file_metrics(await list_files("sftp", p.config, p.secret, p.timeout), time.time())


async def probe_ftp(p: Probe) -> tuple[dict, str]:
    return _file_metrics(await list_files("ftp", p.config, p.secret, p.timeout), time.time())


# --- hosts: node_exporter text, or over SSH -------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> list[tuple[str, dict, float]]:
    """Prometheus text format samples: (name, labels, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), dict(_LABEL.findall(m.group(3) or "")), value))
    return out


def host_metrics_from_node_exporter(text: str, mount: str = "/") -> dict:
    samples = parse_exposition(text)
    idle = total = 0.0
    cpus = set()
    get = {}
    size = avail = None
    for name, labels, value in samples:
        if name == "node_cpu_seconds_total":
            cpus.add(labels.get("cpu"))
            total += value
            if labels.get("mode") == "idle":
                idle += value
        elif name in ("node_load1", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"):
            get[name] = value
        elif name == "node_filesystem_size_bytes" and labels.get("mountpoint") == mount:
            size = value
        elif name == "node_filesystem_avail_bytes" and labels.get("mountpoint") == mount:
            avail = value
    if "node_load1" not in get:
        raise ProbeError("应答中没有 node_exporter 的主机指标")
    metrics = {
        "cpu_busy_pct": round(100 * (1 - idle / total), 2) if total else None,
        "load_per_cpu": round(get["node_load1"] / max(1, len(cpus)), 3),
    }
    if get.get("node_memory_MemTotal_bytes"):
        metrics["mem_used_pct"] = round(
            100 * (1 - get.get("node_memory_MemAvailable_bytes", 0) / get["node_memory_MemTotal_bytes"]), 2
        )
    if size:
        metrics["disk_used_pct"] = round(100 * (1 - (avail or 0) / size), 2)
    return metrics


def _host_text(metrics: dict) -> str:
    parts = []
    for key, label in (("cpu_busy_pct", "CPU"), ("mem_used_pct", "内存"), ("disk_used_pct", "磁盘")):
        if metrics.get(key) is not None:
            parts.append(f"{label} {metrics[key]:.0f}%")
    if metrics.get("load_per_cpu") is not None:
        parts.append(f"每核负载 {metrics['load_per_cpu']}")
    return "，".join(parts)


async def probe_host(p: Probe) -> tuple[dict, str]:
    url = p.config.get("url") or "http://127.0.0.1:9100/metrics"
    answer = await http_request(url, verify=p.config.get("verify_tls", True))
    if answer.status != 200:
        raise ProbeError(f"node_exporter 答 {answer.status}")
    metrics = host_metrics_from_node_exporter(
        answer.body.decode(errors="replace"), p.config.get("mount", "/")
    )
    return metrics, _host_text(metrics)


HOST_SCRIPT = "head -1 /proc/stat; cat /proc/loadavg; nproc; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; df -Pk {mount}"


def host_metrics_from_shell(text: str) -> dict:
    lines = text.strip().splitlines()
    cpu = [float(x) for x in lines[0].split()[1:]]
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
    load1 = float(lines[1].split()[0])
    cpus = int(lines[2])
    mem = {ln.split(":")[0]: float(ln.split()[1]) for ln in lines[3:5]}
    df = lines[-1].split()
    return {
        "cpu_busy_pct": round(100 * (1 - idle / sum(cpu)), 2),
        "load_per_cpu": round(load1 / max(1, cpus), 3),
        "mem_used_pct": round(100 * (1 - mem.get("MemAvailable", 0) / mem["MemTotal"]), 2),
        "disk_used_pct": round(100 * int(df[2]) / max(1, int(df[1])), 2),
    }


def _ssh_host(c: dict, secret: str, timeout: float) -> dict:
    import io
    import shlex

    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 — fingerprint checked below
    kwargs: dict = {"timeout": timeout, "banner_timeout": timeout, "auth_timeout": timeout}
    if secret.startswith("-----BEGIN"):
        kwargs["pkey"] = paramiko.Ed25519Key.from_private_key(io.StringIO(secret))
    else:
        kwargs["password"] = secret
    try:
        client.connect(
            c.get("host", ""),
            int(c.get("port") or 22),
            c.get("username", ""),
            look_for_keys=False,
            allow_agent=False,
            **kwargs,
        )
        expected = (c.get("host_key") or "").strip()
        if expected:
            import hashlib

            key = client.get_transport().get_remote_server_key()
            seen = "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
            if seen != expected:
                raise ProbeError(f"服务器指纹 {seen} 与登记的不符")
        _, stdout, _ = client.exec_command(
            HOST_SCRIPT.format(mount=shlex.quote(c.get("mount", "/"))), timeout=timeout
        )
        return host_metrics_from_shell(stdout.read().decode(errors="replace"))
    finally:
        client.close()


async def probe_host_ssh(p: Probe) -> tuple[dict, str]:
    metrics = await _blocking(_ssh_host, p.config, p.secret, p.timeout)
    return metrics, _host_text(metrics)


# --- PromQL ----------------------------------------------------------------------------------------------------------


async def probe_promql(p: Probe) -> tuple[dict, str]:
    c = p.config
    base = (c.get("api") or "http://127.0.0.1:9090").rstrip("/")
    if not c.get("query"):
        raise ProbeError("未填写 PromQL 查询")
    url = f"{base}/api/v1/query?{urlencode({'query': c['query']})}"
    headers = {"Authorization": f"Bearer {p.secret}"} if p.secret else {}
    answer = await http_request(url, headers=headers, verify=c.get("verify_tls", True))
    try:
        data = json.loads(answer.body)
    except ValueError as exc:
        raise ProbeError(f"Prometheus 答 {answer.status}，不是 JSON") from exc
    if data.get("status") != "success":
        raise ProbeError(f"Prometheus 报错：{str(data.get('error', ''))[:150]}")
    result = data["data"]["result"]
    kind = data["data"]["resultType"]
    if kind == "scalar":
        value = float(result[1])
    elif not result:
        if c.get("empty_is_down"):
            raise ProbeError("查询结果为空")
        return {"value": None, "series": 0}, "查询结果为空"
    else:
        value = float(result[0]["value"][1])
    return {"value": value, "series": len(result) if isinstance(result, list) else 1}, f"查询值 {value:g}"


# --- interface freshness on the business calendar ------------------------------------------------------------------


def journal_records(path: str, bank: str = "", direction: str = "") -> Iterable[dict]:
    """Records of a message journal (a JSON lines file, or the *.jsonl files of a folder; see
    caiwei.recon.sources), those of ``bank`` and ``direction`` when given. Unreadable lines are skipped."""
    root = Path(path)
    files = sorted(root.glob("*.jsonl")) if root.is_dir() else [root]
    if not files or not files[0].exists():
        raise ProbeError(f"报文日志“{path}”不存在")
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                if bank and record.get("bank") != bank:
                    continue
                if direction and record.get("direction") != direction:
                    continue
                yield record


def _journal_time(value) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA)
    return when


CHINA = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")


def expected_now(spec, now: datetime, mode: str, window: timedelta, deadline: str = "") -> bool:
    """Whether the business calendar ``spec`` expects traffic at ``now``.

    - ``window`` mode (a message link): the whole window before ``now`` lies in business time — a link quiet for
      the last hour of a working morning is late; one quiet over a holiday, a night or the first minutes of a
      day is not.
    - ``daily`` mode (a day's bank files): ``now`` is on a business day at or after ``deadline`` (HH:MM, local).
    """
    from caiwei.bizcalendar.engine import business_time_between, is_business_day

    if mode == "daily":
        local = now.astimezone(spec.zone)
        hour, minute = (int(x) for x in (deadline or "10:00").split(":"))
        return is_business_day(spec, local.date()) and (local.hour, local.minute) >= (hour, minute)
    return business_time_between(spec, now - window, now) >= window


async def probe_freshness(p: Probe) -> tuple[dict, str]:
    """Messages or files seen in the window (``window`` mode) or today (``daily`` mode) against what the calendar
    expects. ``config``: source (journal, dir, sftp, ftp) and its settings, mode, window_minutes, deadline,
    min_count; ``calendar``: a CalendarSpec put in by the caller (not JSON)."""
    c = p.config
    spec = c.get("calendar")
    if spec is None:
        raise ProbeError("未指定业务日历")
    now = c.get("now") or datetime.now(UTC)
    mode = c.get("mode", "window")
    window = timedelta(minutes=int(c.get("window_minutes") or 60))
    if mode == "daily":
        local = now.astimezone(spec.zone)
        since = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        since = now - window
    source = c.get("source", "journal")
    if source == "journal":

        def count() -> int:
            n = 0
            for record in journal_records(c.get("path", ""), c.get("bank", ""), c.get("direction", "")):
                when = _journal_time(record.get("time"))
                if when is not None and since <= when <= now:
                    n += 1
            return n

        seen = await _blocking(count)
    else:
        files = await list_files(source, c, p.secret, p.timeout)
        seen = sum(1 for _, mtime in files if since.timestamp() <= mtime <= now.timestamp())
    expected = expected_now(spec, now, mode, window, c.get("deadline", ""))
    needed = int(c.get("min_count") or 1)
    fresh = (seen >= needed) or not expected
    what = "今天" if mode == "daily" else f"最近 {int(window.total_seconds() // 60)} 分钟"
    unit = "个文件" if source != "journal" else "条报文"
    if not expected:
        message = f"{what}收到 {seen} {unit}；按业务日历此时不要求有业务"
    elif fresh:
        message = f"{what}收到 {seen} {unit}（应至少 {needed}）"
    else:
        message = f"{what}只收到 {seen} {unit}，按业务日历应至少 {needed}"
    return {"count": seen, "expected": int(expected), "fresh": int(fresh)}, message


# --- sequence gaps on a message link --------------------------------------------------------------------------------


def sequence_problems(records: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """Per (bank, direction): the numbers missing between the lowest and the highest, and the repeated ones."""
    seen: dict[tuple[str, str], dict[int, int]] = {}
    for r in records:
        seq = r.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            continue
        counts = seen.setdefault((str(r.get("bank", "")), str(r.get("direction", ""))), {})
        counts[seq] = counts.get(seq, 0) + 1
    out = {}
    for link, counts in seen.items():
        low, high = min(counts), max(counts)
        missing = [n for n in range(low, high + 1) if n not in counts] if high - low < 10_000_000 else []
        out[link] = {
            "missing": missing,
            "duplicates": sorted(n for n, k in counts.items() if k > 1),
            "low": low,
            "high": high,
        }
    return out


async def probe_sequence(p: Probe) -> tuple[dict, str]:
    c = p.config
    direction = c.get("direction", "voucher")

    def scan():
        return sequence_problems(journal_records(c.get("path", ""), c.get("bank", ""), direction))

    problems = await _blocking(scan)
    gaps = sum(len(v["missing"]) for v in problems.values())
    dups = sum(len(v["duplicates"]) for v in problems.values())
    notes = []
    for (bank, _), v in sorted(problems.items()):
        if v["missing"]:
            shown = "、".join(map(str, v["missing"][:5])) + ("……" if len(v["missing"]) > 5 else "")
            notes.append(f"{bank} 缺第 {shown} 号")
        if v["duplicates"]:
            notes.append(f"{bank} 第 {'、'.join(map(str, v['duplicates'][:5]))} 号重复")
    if not problems:
        return {"gaps": 0, "duplicates": 0}, "报文日志中没有该链路的报文"
    return {"gaps": gaps, "duplicates": dups}, "；".join(notes) or "序号连续"


# --- heartbeat (dead man's switch) ----------------------------------------------------------------------------------


def heartbeat_metrics(
    last_ping: datetime | None, period_s: float, grace_s: float, now: datetime, since: datetime
):
    """Up while the last ping (or, before any, the time the item was set up) is within period + grace."""
    ref = last_ping or since
    age = max(0.0, (now - ref).total_seconds())
    up = age <= period_s + grace_s
    if last_ping is None:
        message = "尚未收到心跳" + ("" if up else "，已超过周期与宽限")
    else:
        message = f"上次心跳 {age / 60:.1f} 分钟前" + (
            "" if up else f"，超过周期 {period_s / 60:.0f} 分钟与宽限"
        )
    return {"since_ping_s": round(age, 1), "up": int(up)}, message


async def probe_heartbeat(p: Probe) -> tuple[dict, str]:
    c = p.config
    now = c.get("now") or datetime.now(UTC)
    metrics, message = heartbeat_metrics(
        c.get("last_ping"),
        float(c.get("period_s") or 3600),
        float(c.get("grace_s") or 600),
        now,
        c.get("since") or now,
    )
    return metrics, message


PROBES: dict[str, Callable[[Probe], Awaitable[tuple[dict, str]]]] = {
    "http": probe_http,
    "tcp": probe_tcp,
    "tls": probe_tls,
    "database": probe_database,
    "rabbitmq": probe_rabbitmq,
    "redis": probe_redis,
    "sftp": probe_sftp,
    "ftp": probe_ftp,
    "host": probe_host,
    "host_ssh": probe_host_ssh,
    "promql": probe_promql,
    "freshness": probe_freshness,
    "sequence": probe_sequence,
    "heartbeat": probe_heartbeat,
}


# --- the scheduler ---------------------------------------------------------------------------------------------------


@dataclass
class Scheduled:
    key: object
    interval: float
    make: Callable[[], Probe]  # builds the probe when it is due (fresh secrets, calendars, …)


@dataclass
class SchedulerStats:
    runs: int = 0
    failures: int = 0
    delays: list[float] = field(default_factory=list)  # seconds between due and start, one per run

    def percentile(self, q: float) -> float:
        if not self.delays:
            return 0.0
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Scheduler:
    """Runs each item at its interval with at most ``concurrency`` probes at a time; records the scheduling delay
    (how late each probe started against its due time). ``on_result(results, delays)`` receives batches."""

    def __init__(
        self,
        items: Iterable[Scheduled],
        on_result: Callable[[list[ProbeResult]], None] | None = None,
        concurrency: int = 200,
        spread: bool = True,
        batch_seconds: float = 1.0,
    ) -> None:
        self.items = list(items)
        self.on_result = on_result
        self.concurrency = concurrency
        self.spread = spread
        self.batch_seconds = batch_seconds
        self.stats = SchedulerStats()
        self._pending: list[ProbeResult] = []

    async def run(self, duration: float | None = None, stop: asyncio.Event | None = None) -> SchedulerStats:
        loop = asyncio.get_running_loop()
        start = loop.time()
        heap: list[tuple[float, int]] = []
        for i, item in enumerate(self.items):
            offset = (i / max(1, len(self.items))) * item.interval if self.spread else 0.0
            heap.append((start + offset, i))
        heapq.heapify(heap)
        gate = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task] = set()
        flusher = asyncio.create_task(self._flush_loop())
        stop = stop or asyncio.Event()
        try:
            while heap and not stop.is_set():
                due, index = heap[0]
                now = loop.time()
                if duration is not None and due - start >= duration:
                    break
                if due > now:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=min(due - now, 1.0))
                    continue
                await gate.acquire()
                heapq.heappop(heap)
                item = self.items[index]
                heapq.heappush(heap, (due + item.interval, index))
                task = asyncio.create_task(self._one(item, due, gate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            flusher.cancel()
            if self.on_result is not None and self._pending:
                batch, self._pending = self._pending, []
                # in a thread like the others: the callback may write to a database (Django refuses that in a loop)
                await loop.run_in_executor(None, self.on_result, batch)
        return self.stats

    async def _one(self, item: Scheduled, due: float, gate: asyncio.Semaphore) -> None:
        try:
            delay = max(0.0, asyncio.get_running_loop().time() - due)
            self.stats.delays.append(delay)
            try:
                # built in a thread: the caller's builder may read a database (Django refuses that inside a loop)
                probe = await asyncio.get_running_loop().run_in_executor(None, item.make)
            except Exception as exc:  # noqa: BLE001 — a bad item is a failed result, not a dead scheduler
                result = ProbeResult(False, {"up": 0}, f"无法构造探测：{exc}", key=item.key)
            else:
                probe.key = item.key
                result = await run_probe(probe)
            self.stats.runs += 1
            self.stats.failures += 0 if result.ok else 1
            self._pending.append(result)
        finally:
            gate.release()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.batch_seconds)
            if self.on_result is None:
                self._pending.clear()
            elif self._pending:
                batch, self._pending = self._pending, []
                # storing runs in a thread: the probes go on while a batch is written
                await asyncio.get_running_loop().run_in_executor(None, self.on_result, batch)
