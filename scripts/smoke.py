"""Smoke run of the first command on the embedded default: start scripts/up.sh on SQLite in a scratch
directory, log in as every demo account, run a background job through the worker, stop."""

import base64
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("SMOKE_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"


def opener():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def wait_up(proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"scripts/up.sh 提前退出，退出码 {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{BASE}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise SystemExit("网站未在规定时间内启动")


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 with the defaults authenticator apps use (SHA-1, 30 s, 6 digits)."""
    key = base64.b32decode(secret.replace(" ", "").upper() + "=" * (-len(secret.replace(" ", "")) % 8))
    digest = hmac.new(key, struct.pack(">Q", int((at or time.time()) // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def login(username, password):
    op, jar = opener()
    page = op.open(f"{BASE}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    req = urllib.request.Request(f"{BASE}/login/", data=data.encode(), headers={"Referer": f"{BASE}/login/"})
    home = op.open(req)
    body = home.read().decode()
    secret = None
    if home.geturl().endswith("/accounts/login/enrol/"):
        # The three administrators bind an authenticator at their first sign-in: do what the person would, with
        # the key the page shows, and land on the home page.
        secret = re.search(r"data-otp-secret>([A-Z2-7= ]+)<", body).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
        data = urllib.parse.urlencode({"code": totp(secret), "csrfmiddlewaretoken": token})
        url = f"{BASE}/accounts/login/enrol/"
        home = op.open(urllib.request.Request(url, data=data.encode(), headers={"Referer": url}))
        body = home.read().decode()
    if home.geturl().rstrip("/") != BASE or "退出" not in body:
        raise SystemExit(f"演示账号 {username} 登录失败")
    return secret
    return op


def main():
    var = Path(tempfile.mkdtemp(prefix="caiwei-smoke-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"CAIWEI_VAR": str(var), "CAIWEI_PORT": str(PORT)}
    started = time.time()
    log = open(var / "up.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["bash", "scripts/up.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_up(proc)
        print(f"smoke: 网站已就绪，用时 {time.time() - started:.1f} 秒（SQLite：{var}/caiwei.sqlite3）")
        accounts = json.loads((var / "demo_accounts.json").read_text())
        output = (var / "up.log").read_text()
        secrets = {}
        for username, password in accounts.items():
            if password not in output:
                raise SystemExit(f"up.sh 没有打印演示账号 {username} 的密码")
            secrets[username] = login(username, password)
        print(f"smoke: {len(accounts)} 个演示账号均可登录")
        req = urllib.request.Request(
            f"{BASE}/api/auth/token",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps(
                # A code of the next 30-second step: the one used at enrolment may not be used again.
                {
                    "username": "auditor",
                    "password": accounts["auditor"],
                    "name": "smoke",
                    "otp": totp(secrets["auditor"], time.time() + 30),
                }
            ).encode(),
        )
        token = json.loads(urllib.request.urlopen(req).read())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        job = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(f"{BASE}/api/audit/verify", method="POST", headers=auth)
            ).read()
        )
        for _ in range(60):
            job = json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(f"{BASE}/api/jobs/{job['id']}", headers=auth)
                ).read()
            )
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(1)
        if job["status"] != "succeeded" or not job["result"]["intact"]:
            raise SystemExit(f"后台任务未由 worker 完成：{job}")
        print(f"smoke: 后台任务进程执行了审计链校验（{job['result']['rows']} 行，完整）")
        req = urllib.request.Request(
            f"{BASE}/api/auth/token",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"username": "pm", "password": accounts["pm"], "name": "smoke"}).encode(),
        )
        pm = {"Authorization": f"Bearer {json.loads(urllib.request.urlopen(req).read())['token']}"}
        runs = json.loads(
            urllib.request.urlopen(urllib.request.Request(f"{BASE}/api/checks/runs", headers=pm)).read()
        )
        done = [r for r in runs if r["target"] == "演练库" and r["status"] == "done"]
        if not done or not done[0]["findings"]:
            raise SystemExit(f"演练库没有登记为运维对象或没有完成首次检查：{runs}")
        print(
            f"smoke: 演练库已登记为运维对象，首次检查 {done[0]['rules_total']} 条规则、问题 {done[0]['findings']} 条"
        )
    except BaseException:
        sys.stdout.write((var / "up.log").read_text()[-4000:])
        raise
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass  # up.sh already ended (its output is printed above)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
