"""Issue 9, finding 2: a stored database password must never reach a host, port, driver, database or user other than
the one it was stored with.

The attack as reported: PATCH a target database's host or port (password kept), press 测试连接, and read the
password off a listener. Here a real listener on loopback speaks enough of the PostgreSQL protocol to be sent a
password (it refuses TLS and asks for the password in clear text) and records everything it receives.
"""

import socket
import struct
import threading

import pytest

from caiwei.checks import services
from caiwei.checks.forms import DatabaseForm
from caiwei.checks.models import Target, TargetDatabase

STORED = "S3cret-口令-stored"
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class FakePostgres(threading.Thread):
    """A PostgreSQL server that is only interested in passwords."""

    def __init__(self):
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.received = bytearray()
        self.passwords: list[str] = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                self.serve(conn)

    def read(self, conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        self.received += data
        return data

    def serve(self, conn) -> None:
        conn.settimeout(5)
        try:
            while True:  # SSLRequest / GSSENCRequest are refused; then comes the StartupMessage
                length = struct.unpack("!I", self.read(conn, 4))[0]
                body = self.read(conn, length - 4)
                if struct.unpack("!I", body[:4])[0] in (SSL_REQUEST, GSSENC_REQUEST):
                    conn.sendall(b"N")
                    continue
                break
            conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            kind = self.read(conn, 1)
            length = struct.unpack("!I", self.read(conn, 4))[0]
            body = self.read(conn, length - 4)
            if kind == b"p":
                self.passwords.append(body.rstrip(b"\0").decode("utf-8", "replace"))
            error = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0"
            conn.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)
        except (OSError, ConnectionError, struct.error):
            pass

    def heard(self, secret: str) -> bool:
        return secret in self.passwords or secret.encode() in bytes(self.received)

    def close(self):
        self.done.set()
        self.server.close()
        self.join(2)


@pytest.fixture
def listener():
    server = FakePostgres()
    server.start()
    yield server
    server.close()


@pytest.fixture
def stored(regions, users):
    target = Target.objects.create(name="盟本级预算一体化", system="预算编制", region=regions["152500000"])
    database = TargetDatabase(
        target=target,
        name="业务库",
        dialect="postgresql",
        host="127.0.0.1",
        port=1,  # the real server (nothing listens there in the test)
        database="finance",
        username="readonly",
    )
    return services.save_database(users["pm"], database, STORED)


def form_fields(database, **changes) -> dict:
    fields = {
        "name": database.name,
        "dialect": database.dialect,
        "host": database.host,
        "port": str(database.port),
        "database": database.database,
        "username": database.username,
        "read_only": "on",
        "timeout_s": "30",
        "mapping_text": "",
        "password": "",
    }
    return {**fields, **changes}


def test_the_harness_hears_a_password_sent_to_it(listener):
    """The listener is a real one: a connection with a password delivers it."""
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=listener.port, user="u", dbname="d", password="heard-口令")
    assert listener.passwords == ["heard-口令"]


def test_a_stored_password_never_reaches_a_changed_host_or_port(
    stored, listener, users, client_for, token_for
):
    client, auth = client_for(users["pm"]), token_for(users["pm"])
    url = f"/api/checks/databases/{stored.pk}"

    # The reported attack: PATCH the port (or host) keeping the password, then 测试连接.
    for change in (
        {"host": "localhost", "port": listener.port},
        {"port": listener.port},
        {"username": "postgres"},
        {"database": "postgres"},
        {"dialect": "mysql"},
    ):
        response = client.patch(url, change, content_type="application/json", **auth)
        assert response.status_code == 400, (change, response.content)
        assert "重新输入密码" in response.json()["detail"]
    client.post(f"{url}/test", **auth)
    same = TargetDatabase.objects.get(pk=stored.pk)
    assert (same.host, same.port, same.secret) == ("127.0.0.1", 1, stored.secret)

    # Testing unsaved values through the API: the stored password does not go with them.
    response = client.post(f"{url}/test", {"port": listener.port}, content_type="application/json", **auth)
    assert response.status_code == 400 and "重新输入密码" in response.json()["detail"]

    # The page form (shared with the admin): changed connection, no password → asked for it; nothing connects.
    page = client.post(
        f"/checks/databases/{stored.pk}/", form_fields(stored, port=str(listener.port), action="test")
    )
    assert page.status_code == 200 and "重新输入密码" in page.content.decode()
    page = client.post(
        f"/checks/databases/{stored.pk}/", form_fields(stored, port=str(listener.port), action="save")
    )
    assert page.status_code == 200 and "重新输入密码" in page.content.decode()
    admin_form = DatabaseForm(form_fields(stored, host="localhost", port=str(listener.port)), instance=stored)
    assert not admin_form.is_valid() and "重新输入密码" in admin_form.errors["password"][0]
    assert TargetDatabase.objects.get(pk=stored.pk).port == 1

    # Even a row changed around every form (a database edit, a future path): the sealed password is bound to the
    # connection it was stored with and does not unseal for another, so 测试连接 and a run cannot send it.
    TargetDatabase.objects.filter(pk=stored.pk).update(port=listener.port)
    tested = client.post(f"{url}/test", **auth).json()
    assert tested["ok"] is False and "重新输入密码" in tested["message"]
    client.post(f"/checks/databases/{stored.pk}/test/")
    run = services.start_run(
        users["engineer"], TargetDatabase.objects.get(pk=stored.pk), "quota", inline=True
    )
    assert run.status == "failed" and "重新输入密码" in run.message

    assert not listener.heard(STORED) and listener.passwords == []


def test_test_connection_uses_only_what_the_form_holds(stored, listener, users, client_for, token_for):
    client, auth = client_for(users["pm"]), token_for(users["pm"])
    url = f"/api/checks/databases/{stored.pk}"
    # A password typed with the new values is what is sent — and nothing is saved.
    tested = client.post(
        f"{url}/test",
        {"port": listener.port, "password": "typed-口令"},
        content_type="application/json",
        **auth,
    ).json()
    assert tested["ok"] is False and listener.passwords == ["typed-口令"]
    page = client.post(
        f"/checks/databases/{stored.pk}/",
        form_fields(stored, port=str(listener.port), password="page-口令", action="test"),
    )
    assert page.status_code == 200 and "测试连接（未保存）" in page.content.decode()
    assert listener.passwords == ["typed-口令", "page-口令"]
    same = TargetDatabase.objects.get(pk=stored.pk)
    assert (same.port, same.secret, same.last_test_at) == (1, stored.secret, stored.last_test_at)
    assert same.unsealed_password() == STORED

    # Moving the connection with the password cleared: saved without one; a test sends none.
    changed = client.patch(
        url, {"port": listener.port, "clear_password": True}, content_type="application/json", **auth
    ).json()
    assert changed["has_password"] is False
    client.post(f"{url}/test", **auth)
    # Moving it with a new password: the new one is sealed for the new connection and is what a test sends.
    page = client.post(
        f"/checks/databases/{stored.pk}/", form_fields(stored, port=str(listener.port), password="new-口令")
    )
    assert page.status_code == 302
    assert listener.passwords[-1] == "new-口令" and not listener.heard(STORED)
