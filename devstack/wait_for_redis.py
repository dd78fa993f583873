"""Wait until the configured Redis answers PING (``python -m devstack.wait_for_redis``).

honcho starts every Procfile process at once; an RQ worker or scheduler that
finds no Redis exits, and honcho then stops the whole stack. Processes that
need Redis run this first, so a slow-starting embedded Redis is not an error.
"""

import os
import sys
import time

import redis


def configured_redis_url() -> str:
    """``REDIS_URL`` as the project's settings resolve it (the embedded Redis by default)."""
    os.environ.setdefault("DJANGO_DEBUG", "1")
    from config import settings

    return settings.SMS_NOTIFICATIONS["REDIS_URL"]


def wait_for_redis(url: str, timeout: float) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            client.close()


def main() -> int:
    url = configured_redis_url()
    timeout = float(os.environ.get("REDIS_WAIT_TIMEOUT", "30"))
    try:
        wait_for_redis(url, timeout)
    except redis.ConnectionError as error:
        print(f"Redis at {url} did not answer within {timeout:g}s: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
