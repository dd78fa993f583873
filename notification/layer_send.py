"""Several group sends of channels_redis' core layer in two Redis round trips, not four each.

``RedisChannelLayer.group_send`` (channels_redis 4.3) costs, for *each* group,
a ``ZREMRANGEBYSCORE`` of expired members, a ``ZRANGE`` of the members, a
pipeline discarding expired messages and an ``EVAL`` carrying the whole Lua
script, one after the other; two of them even for a group nobody is in. A status
change goes to two or three groups (the notification's, its recipient's and its
creator's), so a signed status callback paid four to twelve round trips and as
many command encodings: the publish was about a third of the webhook's CPU at
hundreds of callbacks per second (README, "Profiling notes").

``group_send_many`` does the same work for a batch of (group, message) pairs:

1. one pipeline per Redis host with, for every group, the ``ZREMRANGEBYSCORE``
   of expired members and the ``ZRANGE`` of the rest;
2. one script call per host that has members (``EVALSHA``: the script is sent
   once per connection), which for each channel key discards expired messages,
   then adds the message unless the channel is at capacity, as upstream's script
   does.

What each channel receives is exactly what ``group_send`` would have stored: the
messages are built and serialized by the layer's own
``_map_channel_keys_to_connection``. Any other layer (in-memory, pub/sub, a
channels_redis version whose internals differ) gets ``group_send`` per pair.
Over-capacity channels are logged, as upstream logs them; like upstream, a full
channel does not fail the send.
"""

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

logger = logging.getLogger(__name__)

_SEND = """
local over_capacity = 0
local count = #KEYS
local now = tonumber(ARGV[2 * count + 1])
local expiry = tonumber(ARGV[2 * count + 2])
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""

_REQUIRED = ("_group_key", "_map_channel_keys_to_connection", "consistent_hash", "connection")


def _batchable(layer: Any) -> bool:
    """A channels_redis core layer with the internals this module relies on."""
    return type(layer).__module__.startswith("channels_redis.core") and all(
        hasattr(layer, name) for name in _REQUIRED
    )


async def group_send_many(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each message to its group; raises what Redis raises (the caller logs it)."""
    if not sends:
        return
    if not _batchable(layer):
        results = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in sends),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return
    for group, _message in sends:
        assert layer.require_valid_group_name(group), "Group name not valid"
    members = await _members(layer, [group for group, _message in sends])
    keys_by_host: defaultdict[int, list[bytes]] = defaultdict(list)
    messages_by_host: defaultdict[int, list[bytes]] = defaultdict(list)
    capacities_by_host: defaultdict[int, list[int]] = defaultdict(list)
    for (_group, message), channels in zip(sends, members, strict=True):
        if not channels:
            continue
        hosts, messages, capacities = layer._map_channel_keys_to_connection(channels, message)
        for host, channel_keys in hosts.items():
            keys_by_host[host] += channel_keys
            messages_by_host[host] += [messages[key] for key in channel_keys]
            capacities_by_host[host] += [capacities[key] for key in channel_keys]
    if keys_by_host:
        await asyncio.gather(
            *(
                _store(
                    layer,
                    host,
                    keys_by_host[host],
                    messages_by_host[host],
                    capacities_by_host[host],
                )
                for host in keys_by_host
            )
        )


async def _members(layer: Any, groups: list[str]) -> list[list[str]]:
    """Each group's current channels (expired memberships dropped first), one pipeline per host."""
    by_host: defaultdict[int, list[int]] = defaultdict(list)
    for position, group in enumerate(groups):
        by_host[layer.consistent_hash(group)].append(position)
    members: list[list[str]] = [[] for _ in groups]
    expired_before = int(time.time()) - layer.group_expiry

    async def read(host: int, positions: list[int]) -> None:
        pipe = layer.connection(host).pipeline(transaction=False)
        for position in positions:
            key = layer._group_key(groups[position])
            pipe.zremrangebyscore(key, min=0, max=expired_before)
            pipe.zrange(key, 0, -1)
        replies = await pipe.execute()
        for position, names in zip(positions, replies[1::2], strict=True):
            members[position] = [name.decode("utf8") for name in names]

    await asyncio.gather(*(read(host, positions) for host, positions in by_host.items()))
    return members


async def _store(
    layer: Any, host: int, keys: list[bytes], messages: list[bytes], capacities: list[int]
) -> None:
    connection = layer.connection(host)
    script = connection.register_script(_SEND)
    over = await script(keys=keys, args=[*messages, *capacities, time.time(), layer.expiry])
    if over:
        logger.info("%s of %s channel messages over capacity", over, len(keys))
