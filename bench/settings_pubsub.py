"""Bench-only settings: the project's settings with channels_redis' pub/sub layer.

``bench/status.py --layer pubsub`` runs uvicorn with this module to compare the
two channels_redis layers. The pub/sub layer sends one Redis message per group
and process and fans it out in memory; the core layer queues one Redis message
per subscribed consumer, which each consumer then pops.
"""

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
    }
}
