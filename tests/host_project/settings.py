"""A minimal host project, as the README's "Use it in your own Django project" sets one up.

Only Django's own apps, the ``notification`` app, its URLs and schema parts,
django-rq's ``sms`` queue, channels' layer and the app's one setting,
``SMS_NOTIFICATIONS``, holding the Twilio credentials. Everything else comes from
the app's defaults (``notification.conf``). The test that runs it chooses the
database file, the Redis and the backend through the environment.
"""

import os

SECRET_KEY = "host-project-test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "django_rq",
    "notification",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.host_project.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["HOST_DATABASE"]}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The SMS queue for the send job (django-rq's own setting).
RQ_QUEUES = {"sms": {"URL": os.environ["HOST_REDIS_URL"]}}
# Live status for subscriptions (channels' own setting).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["HOST_REDIS_URL"]]},
    }
}
# The login lockout asks first (README: the lockout backend goes first).
AUTHENTICATION_BACKENDS = [
    "notification.throttle.login.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A CSRF failure on the GraphQL view answers a GraphQL error (README "Frontends").
CSRF_FAILURE_VIEW = "notification.csrf.csrf_failure"

# The app's settings: one dict (README "Settings in your own project"); the app's
# defaults (notification.conf) fill every key left out.
SMS_NOTIFICATIONS = {
    # How Twilio reaches the site (https: ``check --deploy`` warns otherwise).
    "PUBLIC_BASE_URL": "https://sms.example.com",
    # The Twilio credentials (never used here: the locmem backend sends nothing).
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "0" * 32,
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SMS_BACKEND": os.environ.get("HOST_SMS_BACKEND", "notification.backends.locmem.LocmemBackend"),
}
