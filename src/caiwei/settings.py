"""Settings read from the environment; the embedded default is SQLite and huey-on-SQLite under ./var/."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent
VAR_DIR = Path(os.environ.get("CAIWEI_VAR", PROJECT_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("CAIWEI_DEBUG")
SECRET_KEY = os.environ.get("CAIWEI_SECRET_KEY", "")
if not SECRET_KEY:
    # The quickstart keeps a generated key in ./var so sessions survive restarts without an env var.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("CAIWEI_SECRET_KEY 太短（至少 32 个字符）")

ALLOWED_HOSTS = [
    h for h in os.environ.get("CAIWEI_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CAIWEI_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "caiwei.web.apps.CaiweiAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "ninja",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "caiwei.audit",
    "caiwei.regions",
    "caiwei.accounts",
    "caiwei.bizcalendar",
    "caiwei.jobs",
    "caiwei.sandbox",
    "caiwei.desk",
    "caiwei.checks",
    "caiwei.recon",
    "caiwei.dataops",
    "caiwei.monitor",
    "caiwei.inspections",
    "caiwei.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "caiwei.audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "caiwei.web.middleware.PolicyMiddleware",
    "caiwei.web.middleware.NoStoreMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "caiwei.web.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "caiwei.urls"
WSGI_APPLICATION = "caiwei.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "caiwei.web.context.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'caiwei.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("CAIWEI_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server read while the worker writes; IMMEDIATE takes the write lock up front
        # so two writers queue on busy_timeout instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["caiwei.accounts.backends.LockoutModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "caiwei.accounts.validators.UserAttributeSimilarityValidator"},
    {"NAME": "caiwei.accounts.validators.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "caiwei.accounts.validators.CommonPasswordValidator"},
    {"NAME": "caiwei.accounts.validators.NumericPasswordValidator"},
    {"NAME": "caiwei.accounts.validators.CharacterClassValidator", "OPTIONS": {"min_classes": 3}},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
LOCKOUT_THRESHOLD = envint("CAIWEI_LOCKOUT_THRESHOLD", 5)
LOCKOUT_MINUTES = envint("CAIWEI_LOCKOUT_MINUTES", 15)

# Idle sessions expire; every request pushes the expiry forward.
SESSION_COOKIE_AGE = envint("CAIWEI_SESSION_MINUTES", 30) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("CAIWEI_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Front-end packages are installed from the npm registry at set-up into node_modules (never committed).
NODE_MODULES = PROJECT_DIR / "node_modules"
STATICFILES_DIRS = [
    (f"vendor/{name}", NODE_MODULES / package / "dist")
    for name, package in (("bootstrap", "bootstrap"), ("htmx", "htmx.org"), ("echarts", "echarts"))
    if (NODE_MODULES / package / "dist").exists()
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
# The sandbox finance database the demo works on (SQLite under ./var unless set).
CAIWEI_SANDBOX_URL = os.environ.get("CAIWEI_SANDBOX_URL", "")
# The only directory SQLite targets of data checks may live in (besides the sandbox file); empty: VAR_DIR/targets.
CAIWEI_SQLITE_TARGET_DIR = os.environ.get("CAIWEI_SQLITE_TARGET_DIR", "")
# The only directory watched folders of bank files (对账 监视目录) may lie in; empty: VAR_DIR/recon-watch.
CAIWEI_RECON_WATCH_DIR = os.environ.get("CAIWEI_RECON_WATCH_DIR", "")
# Where bank files taken in are kept (accepted, and refused in quarantine/); empty: VAR_DIR/recon-inbox.
CAIWEI_RECON_INBOX_DIR = os.environ.get("CAIWEI_RECON_INBOX_DIR", "")

# 监控: raw probe results are kept this many hours, then folded into hourly rows kept this many days.
CAIWEI_MONITOR_RAW_HOURS = envint("CAIWEI_MONITOR_RAW_HOURS", 48)
CAIWEI_MONITOR_ROLLUP_DAYS = envint("CAIWEI_MONITOR_ROLLUP_DAYS", 400)
# The only directory whose files monitoring reads (message journals, a local file drop); empty: VAR_DIR/monitor-files.
CAIWEI_MONITOR_FILE_DIR = os.environ.get("CAIWEI_MONITOR_FILE_DIR", "")

# Background jobs: huey on SQLite beside the database by default, Redis when CAIWEI_REDIS_URL is set.
REDIS_URL = os.environ.get("CAIWEI_REDIS_URL", "")
HUEY = {
    "name": os.environ.get("CAIWEI_HUEY_NAME", "caiwei"),
    "immediate": envbool("CAIWEI_HUEY_IMMEDIATE"),
    # An idle consumer backs off up to max_delay between polls (huey's default is 10 s, which made a 0.6 s check
    # run look like a 6 s wait on the run page); half a second costs one cheap query per poll.
    "consumer": {
        "workers": envint("CAIWEI_WORKERS", 2),
        "worker_type": "thread",
        "max_delay": float(os.environ.get("CAIWEI_WORKER_MAX_DELAY", "0.5")),
    },
}
if REDIS_URL:
    HUEY |= {"huey_class": "huey.PriorityRedisHuey", "url": REDIS_URL}
else:
    HUEY |= {"huey_class": "huey.SqliteHuey", "filename": str(VAR_DIR / "huey.sqlite3")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CAIWEI_LOG_LEVEL", "INFO")},
}
