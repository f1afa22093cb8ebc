"""Real services on loopback for the probes: an HTTP(S) server and an FTP server started here, Debian's sshd (as the
reconciliation tests start it), node_exporter and Prometheus (Debian packages, started here on free ports), and the
machine's PostgreSQL, MariaDB, Redis and RabbitMQ (with its management plugin, enabled here when it is off)."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def missing(message: str):
    """A service that cannot run here: a failure in CI, a skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Handler(http.server.BaseHTTPRequestHandler):
    """/ok answers 200 with 系统运行正常, /slow sleeps a while, /fail answers 503; POST /robot records the body
    (a 企业微信/钉钉 robot stand-in)."""

    posts: list[bytes] = []

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/slow"):
            time.sleep(2)
        status = 503 if self.path.startswith("/fail") else 200
        body = "系统运行正常".encode() if status == 200 else "维护中".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append(body)
        answer = b'{"errcode": 0, "errmsg": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def self_signed(folder: Path, days: int) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def https_server(tmp_path_factory):
    """An HTTPS server with a self-signed certificate valid for 20 more days; yields (url, cafile)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder, 20)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    serve(server)
    yield f"https://localhost:{server.server_address[1]}", str(cert)
    server.shutdown()


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory):
    """pyftpdlib on loopback: user bank / Bank-Ftp-2026 with the folder out/; yields (port, folder)."""
    try:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer
    except ImportError:
        missing("缺少 pyftpdlib（pip install -e .[test]）")
    root = tmp_path_factory.mktemp("ftp")
    (root / "out").mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("bank", "Bank-Ftp-2026", str(root), perm="elr")
    handler = type("H", (FTPHandler,), {"authorizer": authorizer, "passive_ports": None})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.5}, daemon=True)
    thread.start()
    yield server.address[1], root / "out"
    server.close_all()


@pytest.fixture(scope="session")
def sshd():
    from caiwei.recon.tests.test_intake import Sshd, need_sshd

    need_sshd()
    folder = Path(tempfile.mkdtemp(prefix="caiwei-monitor-sshd-"))
    server = Sshd(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def node_exporter():
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if not binary:
        missing("缺少 Debian 的 prometheus-node-exporter；scripts/install.sh --test 会安装它")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.loadavg",
            "--collector.meminfo",
            "--collector.filesystem",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    if not _wait_http(url):
        proc.kill()
        pytest.fail("node_exporter 未能启动")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def prometheus(node_exporter, tmp_path_factory):
    binary = shutil.which("prometheus")
    if not binary:
        missing("缺少 Debian 的 prometheus；scripts/install.sh --test 会安装它")
    folder = tmp_path_factory.mktemp("prometheus")
    target = node_exporter.split("//")[1].split("/")[0]
    (folder / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        f"  - job_name: node\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:  # ready, and the first scrape of node_exporter stored
        try:
            with urllib.request.urlopen(f"{api}/api/v1/query?query=up", timeout=1) as answer:  # noqa: S310
                if b'"value"' in answer.read():
                    break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("Prometheus 未能启动或未抓取到 node_exporter")
    yield api
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def rabbit_api():
    """The management HTTP API of the machine's RabbitMQ (guest/guest), its plugin enabled when it is off."""
    if not listening(5672):
        missing("RabbitMQ 未运行（scripts/services.sh 会启动它）")
    if not listening(15672):
        if not shutil.which("rabbitmq-plugins"):
            missing("缺少 rabbitmq-plugins")
        subprocess.run(
            ["rabbitmq-plugins", "enable", "rabbitmq_management"], check=False, capture_output=True
        )
        if not _wait_http("http://127.0.0.1:15672/", 60):
            pytest.fail("RabbitMQ 管理插件未能启动（15672）")
    return "http://127.0.0.1:15672"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(settings):
    """Nobody signs in with a password in these tests: a cheap hasher keeps making accounts quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def default_rules(db):
    """The starting rules come from a data migration; a transactional test before this one may have flushed them."""
    from caiwei.monitor.services import ensure_default_rules

    ensure_default_rules()
