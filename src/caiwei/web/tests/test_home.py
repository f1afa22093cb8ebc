"""The page shell: tiles and navigation by role; unbuilt capabilities say so; CSP and security headers."""

import pytest

from caiwei.web.capabilities import TILES

pytestmark = pytest.mark.django_db

BUILT = {t.code for t in TILES if t.built}


def tile_codes(html: str) -> set[str]:
    import re

    return set(re.findall(r'data-tile="([a-z]+)"', html))


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            "agent",
            {
                "desk",
                "kb",
                "inspections",
                "checks",
                "recon",
                "dataops",
                "releases",
                "access",
                "reports",
                "sandbox",
                "calendar",
                "jobs",
                "regions",
            },
        ),
        ("unit", {"portal", "kb", "calendar", "regions"}),
        ("bank", {"portal", "kb", "recon", "calendar", "regions"}),
        ("sysadmin", {"calendar", "jobs", "regions", "users"}),
        ("secadmin", {"jobs", "regions", "grants"}),
        ("auditor", {"jobs", "regions", "audit"}),
    ],
)
def test_tiles_by_role(users, client_for, role, expected):
    html = client_for(users[role]).get("/").content.decode()
    assert tile_codes(html) == expected


def test_unbuilt_capability_says_so(users, client_for):
    html = client_for(users["pm"]).get("/").content.decode()
    assert "尚未上线" in html
    assert html.count("尚未上线") == len([t for t in TILES if not t.built and "pm" in t.roles])


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_security_headers(users, client_for):
    response = client_for(users["agent"]).get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) == 32


def test_user_content_is_escaped(users, client_for):
    user = users["agent"]
    user.full_name = "<script>alert(1)</script>"
    user.save()
    html = client_for(user).get("/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_openapi_is_served(users, client_for):
    schema = client_for(users["agent"]).get("/api/openapi.json").json()
    assert schema["info"]["title"] == "财维 Caiwei API"
    assert "/api/audit/events" in schema["paths"] and "/api/auth/token" in schema["paths"]
    docs = client_for(users["agent"]).get("/api/docs")
    assert docs.status_code == 200


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
