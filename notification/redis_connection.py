"""The app's own Redis (early status callbacks, throttle counters): one place picks it.

``SMS_NOTIFICATIONS["REDIS_URL"]`` when the project sets it, else the connection of the SMS queue
(django-rq's), so a project that configured RQ needs nothing more. Web and worker
processes share it, which is what makes a counter kept there hold across processes.
"""

import django_rq
import redis

from notification.conf import app_settings

#: Seconds a command may take before the caller treats Redis as unavailable.
SOCKET_TIMEOUT = 5

_clients: dict[str, redis.Redis] = {}


def get_redis() -> redis.Redis:
    """A client on the app's Redis (one per URL per process: connections are pooled)."""
    url = app_settings.REDIS_URL
    if not url:
        return django_rq.get_connection(app_settings.SMS_QUEUE_NAME)
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT)
    return client
