"""Listening on the channel layer as a websocket consumer would: join groups, read messages.

Uses the session's real Redis channel layer (``redis_url`` fixture); what arrives
here is what a subscriber of the same groups would be sent.
"""

import asyncio

import redis as redis_py
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from notification.conf import app_settings


async def _listen(groups: list[str]) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


def listen(groups: list[str]) -> str:
    """A new channel that has joined ``groups`` (before this returns)."""
    return async_to_sync(_listen)(groups)


async def _receive_all(channel: str, timeout: float) -> list[dict]:
    layer = get_channel_layer()
    messages = []
    try:
        while True:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout))
            timeout = 0.3  # after the first, only collect what is already there
    except TimeoutError:
        return messages


def receive_all(channel: str, timeout: float = 2.0) -> list[dict]:
    """Every message waiting on ``channel``: the first within ``timeout``, then what follows."""
    return async_to_sync(_receive_all)(channel, timeout)


async def _receive_one(channel: str, timeout: float) -> dict:
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


def receive_one(channel: str, timeout: float = 10.0) -> dict:
    """The next message on ``channel`` (``TimeoutError`` when none comes)."""
    return async_to_sync(_receive_one)(channel, timeout)


def group_size(group: str) -> int:
    """Channels in ``group`` right now, read from Redis: a server process's join or leave
    is visible here the moment it happened (channels_redis keeps each group as the
    sorted set ``<prefix>:group:<name>``)."""
    layer = get_channel_layer()
    client = redis_py.Redis.from_url(app_settings.REDIS_URL)
    try:
        return client.zcard(f"{layer.prefix}:group:{group}")
    finally:
        client.close()
