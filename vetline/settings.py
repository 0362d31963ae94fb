"""Vetline settings.

Everything an operator may change comes from the environment (see docs/operations.md).
``VETLINE_ENV`` selects the profile: ``development`` (default, embedded SQLite, local files,
in-process friendly), ``production`` (secure defaults, required secrets) or ``test``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
ENV = os.environ.get("VETLINE_ENV", "development")
PRODUCTION = ENV == "production"
TESTING = ENV == "test"
DATA_DIR = Path(os.environ.get("VETLINE_DATA_DIR", Path.cwd() / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret(filename: str, factory: object) -> str:
    """A per-installation secret kept in the data directory (embedded mode only)."""
    path = DATA_DIR / filename
    if not path.exists():
        path.write_text(factory() if callable(factory) else str(factory))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set in production (docs/operations.md).")
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret(
        "secret.key", lambda: secrets.token_urlsafe(64)
    )

DEBUG = _env_bool("DEBUG", False)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")
# Behind N reverse proxies, the client address (for the audit trail and the sign-in rate limit)
# is the N-th entry from the right of X-Forwarded-For: entries further left are client-supplied.
VETLINE_TRUSTED_PROXY_COUNT = int(os.environ.get("VETLINE_TRUSTED_PROXY_COUNT", "0"))
ALLAUTH_TRUSTED_PROXY_COUNT = VETLINE_TRUSTED_PROXY_COUNT

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "huey.contrib.djhuey",
    # vetline.core comes before allauth so that its templates (the layout allauth's pages
    # extend, the sign-in page) take precedence.
    "vetline.core",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "vetline.identity",
    "vetline.audit",
    "vetline.accounts",
    "vetline.policy",
    "vetline.archive",
    "vetline.importers",
    "vetline.connectors",
    "vetline.connectors.sandbox",
    "vetline.publishing",
    "vetline.profiles",
    "vetline.supervision",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "vetline.core.middleware.RequestContextMiddleware",
    "vetline.core.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "vetline.identity.middleware.IdleTimeoutMiddleware",
    "vetline.identity.middleware.MfaEnrolmentMiddleware",
    "vetline.core.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "vetline.urls"
WSGI_APPLICATION = "vetline.wsgi.application"

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
                "vetline.core.context_processors.navigation",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'vetline.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server and the worker read while one of them writes; IMMEDIATE
        # transactions take the write lock up front so concurrent writers wait, not fail.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, background jobs -----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if TESTING:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

HUEY_IMMEDIATE = _env_bool("VETLINE_JOBS_IMMEDIATE", TESTING)
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": os.environ.get("VETLINE_QUEUE_NAME", "vetline"),
        "url": REDIS_URL,
        "immediate": HUEY_IMMEDIATE,
        "utc": True,
        "consumer": {
            "workers": int(os.environ.get("VETLINE_WORKER_THREADS", "4")),
            "worker_type": "thread",
        },
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "vetline",
        "filename": str(DATA_DIR / "jobs.sqlite3"),
        "immediate": HUEY_IMMEDIATE,
        "utc": True,
        "consumer": {
            "workers": int(os.environ.get("VETLINE_WORKER_THREADS", "2")),
            "worker_type": "thread",
        },
    }

# --- Authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "identity.Person"
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "vetline.identity.adapter.VetlineAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# Lock-out is enforced by Vetline itself (per person, in the database, audited); allauth's
# cache-based rate limit stays as a per-IP brake against spraying many accounts.
ACCOUNT_RATE_LIMITS = {"login_failed": "30/5m/ip"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Vetline"
MFA_RECOVERY_CODE_COUNT = 10
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

VETLINE_LOCKOUT_THRESHOLD = int(os.environ.get("VETLINE_LOCKOUT_THRESHOLD", "5"))
VETLINE_LOCKOUT_MINUTES = int(os.environ.get("VETLINE_LOCKOUT_MINUTES", "15"))
VETLINE_IDLE_TIMEOUT_MINUTES = int(os.environ.get("VETLINE_IDLE_TIMEOUT_MINUTES", "30"))
SESSION_COOKIE_AGE = 12 * 3600  # absolute cap; the idle timeout is enforced by middleware
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Credentials vault ------------------------------------------------------------------------
# Comma-separated Fernet keys, newest first. The first encrypts; all decrypt (rotation).
if PRODUCTION:
    VETLINE_VAULT_KEYS = _env_list("VETLINE_VAULT_KEYS")
else:
    from cryptography.fernet import Fernet

    VETLINE_VAULT_KEYS = _env_list("VETLINE_VAULT_KEYS") or [
        _local_secret("vault.key", lambda: Fernet.generate_key().decode())
    ]

VETLINE_DEFAULT_PUBLISHER_CAP = 10
VETLINE_API_TOKEN_MAX_DAYS = int(os.environ.get("VETLINE_API_TOKEN_MAX_DAYS", "365"))

# --- E-mail ------------------------------------------------------------------------------------
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", True)
elif TESTING:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "vetline@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- I18N, static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "media")},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security -------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"huey": {"level": "WARNING"}},
}

NINJA_PAGINATION_PER_PAGE = 50
MFA_ADAPTER = "vetline.identity.mfa_adapter.VetlineMFAAdapter"

# --- Archive integrity log (vetline.archive) -------------------------------------------------
# The Ed25519 key that signs tree heads: VETLINE_LOG_SIGNING_KEY holds a PEM (PKCS#8) or the raw
# 32-byte private key in base64. In development it is generated into DATA_DIR/log-signing.key.
# VETLINE_LOG_TRUSTED_KEYS lists retired public keys (hex) whose old heads must still verify.
# Key generation and rotation: docs in vetline/archive/integrity/sth.py.
VETLINE_LOG_SIGNING_KEY = os.environ.get("VETLINE_LOG_SIGNING_KEY", "")
if not VETLINE_LOG_SIGNING_KEY and not PRODUCTION:
    import base64 as _b64

    VETLINE_LOG_SIGNING_KEY = _local_secret(
        "log-signing.key", lambda: _b64.b64encode(secrets.token_bytes(32)).decode()
    )
VETLINE_LOG_TRUSTED_KEYS = _env_list("VETLINE_LOG_TRUSTED_KEYS")
VETLINE_WITNESS_DIR = os.environ.get("VETLINE_WITNESS_DIR", str(DATA_DIR / "witness"))
VETLINE_BLOB_DIR = os.environ.get("VETLINE_BLOB_DIR", str(DATA_DIR / "blobs"))
# Largest attachment the REST API takes (POST /api/archive/blobs), in bytes.
VETLINE_MAX_ATTACHMENT_BYTES = int(os.environ.get("VETLINE_MAX_ATTACHMENT_BYTES", "104857600"))
# --- end of archive settings -----------------------------------------------------------------

# --- Archive blob storage backend (vetline.archive.blobs; docs/operations.md) ----------------
# "local" (default): VETLINE_BLOB_DIR. "s3": an S3-compatible bucket with Object Lock enabled;
# blobs are locked in compliance mode. Credentials come from boto3's standard chain
# (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance or task role).
VETLINE_BLOB_BACKEND = os.environ.get("VETLINE_BLOB_BACKEND", "local").strip().lower()
VETLINE_S3_BUCKET = os.environ.get("VETLINE_S3_BUCKET", "").strip()
VETLINE_S3_ENDPOINT_URL = os.environ.get("VETLINE_S3_ENDPOINT_URL", "").strip()  # "" = AWS
VETLINE_S3_REGION = os.environ.get("VETLINE_S3_REGION", "").strip()  # "" = boto3's default
# --- end of blob storage settings ------------------------------------------------------------

# --- Connectors (vetline.connectors) ---------------------------------------------------------
# Per-network operator settings handed to each connector plugin (client ids and secrets…), as
# JSON in VETLINE_CONNECTORS, e.g. {"mastodon": {"client_id": "…"}}. See docs/connectors.md.
import json as _json  # noqa: E402

VETLINE_CONNECTORS: dict[str, dict[str, object]] = _json.loads(
    os.environ.get("VETLINE_CONNECTORS", "{}")
)
# The address people reach Vetline at, for links in e-mails (consent links).
VETLINE_BASE_URL = os.environ.get("VETLINE_BASE_URL", "http://127.0.0.1:8000")
VETLINE_CONSENT_LINK_HOURS = int(os.environ.get("VETLINE_CONSENT_LINK_HOURS", "72"))
VETLINE_CAPTURE_INTERVAL_MINUTES = int(os.environ.get("VETLINE_CAPTURE_INTERVAL_MINUTES", "1"))
VETLINE_CAPTURE_LAG_ALERT_MINUTES = int(os.environ.get("VETLINE_CAPTURE_LAG_ALERT_MINUTES", "60"))
VETLINE_CAPTURE_FAILURES_BEFORE_ALERT = int(
    os.environ.get("VETLINE_CAPTURE_FAILURES_BEFORE_ALERT", "3")
)
# Captured media larger than this are not fetched (the item is archived without them, audited).
VETLINE_CAPTURE_MEDIA_MAX_BYTES = int(
    os.environ.get("VETLINE_CAPTURE_MEDIA_MAX_BYTES", "104857600")
)
# Simulated customers on the training sandbox (on in development and the demo).
VETLINE_SANDBOX_SIMULATOR = _env_bool("VETLINE_SANDBOX_SIMULATOR", not PRODUCTION and not TESTING)
# Tokens never reach the logs: every handler redacts them.
LOGGING["filters"] = {"redact_tokens": {"()": "vetline.connectors.http.TokenRedactingFilter"}}
for _handler in LOGGING["handlers"].values():  # type: ignore[attr-defined]
    _handler.setdefault("filters", []).append("redact_tokens")
# --- end of connectors settings --------------------------------------------------------------

# --- Supervision notifications (vetline.supervision.notifications; docs/operations.md) -------
# The digest of new review items goes to each reviewer at most once every this many minutes.
VETLINE_SUPERVISION_DIGEST_MINUTES = int(os.environ.get("VETLINE_SUPERVISION_DIGEST_MINUTES", "60"))
# How many of the oldest new items a digest lists (the counts per queue cover all of them).
VETLINE_SUPERVISION_DIGEST_ITEMS = int(os.environ.get("VETLINE_SUPERVISION_DIGEST_ITEMS", "10"))
# A notification that cannot be sent is retried (1, 2, 4… minutes, at most an hour apart) up
# to this many attempts, then marked failed and logged.
VETLINE_SUPERVISION_MAIL_ATTEMPTS = int(os.environ.get("VETLINE_SUPERVISION_MAIL_ATTEMPTS", "8"))
# --- end of supervision notifications settings -----------------------------------------------
