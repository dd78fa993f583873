"""Every subscriber gets every change: many subscribers, one and two servers, both protocols.

A third-party client once saw one of five subscribers stop after SENT (2 runs in
13) while the others got DELIVERED. These tests hold many subscribers at once
(``smsStatus`` and ``myNotifications``, ``graphql-transport-ws`` and legacy
``graphql-ws``) on one uvicorn and on two, while the emulator's callbacks race
the worker's own write (no drain, no callback delay), and check that *every*
subscriber ends at DELIVERED for *every* notification, round after round. One
miss in a few hundred subscriber-runs fails the test, so a failure rate like
the reported one (about one subscriber in 30) cannot pass by luck.

Each round's subscribers also disconnect while the next round's publishes are
under way, which is when the layer's shared receive loop changes hands. Half the
sockets offer no permessage-deflate (as the Procfile serves), so the direct lane's
shared frames (``ws.wire``) are held to the same rule as its writes through ``send``.
"""

import asyncio
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.support.live_support import (
    MY_NOTIFICATIONS_SUBSCRIPTION,
    SMS_STATUS_SUBSCRIPTION,
    HttpSession,
    LegacyWsClient,
    TransportWsClient,
    run_uvicorn,
    run_worker,
)

pytestmark = pytest.mark.slow  # rounds of many subscribers: started first (tests/README.md)

PASSWORD = "correct horse battery staple"
CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) { notification { id } errors { field message } }
}
"""
#: Limits that would refuse a test's own load (sockets per user, requests per minute).
# Every subscriber connects from the one loopback address: the per-address cap
# (notification.http_guard) would refuse the few hundred the test opens at once.
SERVER_ENV = {
    "GRAPHQL_WS_MAX_SOCKETS_PER_USER": "0",
    "GRAPHQL_USER_RATE": "0",
    "HTTP_MAX_CONNECTIONS_PER_ADDRESS": "0",
}


def _staff() -> Any:
    user = get_user_model().objects.create_user("watcher", password=PASSWORD)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="notification",
            codename__in=["add_notification", "view_notification"],
        )
    )
    return user


def _create(session: HttpSession, user: Any, count: int) -> list[str]:
    ids = []
    for number in range(count):
        created = session.graphql(
            CREATE,
            {
                "input": {
                    "title": "Stress",
                    "body": f"Message {number}",
                    "toPhoneNumber": f"+1 415 555 01{number:02d}",
                    "userId": str(user.pk),
                }
            },
        )["data"]["createSmsNotification"]
        assert created["errors"] == [], created
        ids.append(created["notification"]["id"])
    return ids


async def _subscriber(
    ws_url: str,
    cookie: str,
    kind_of_client: tuple[type, str | None],
    kind: str,
    ids: list[str],
    ready: asyncio.Event,
) -> dict[str, str]:
    """Subscribe, collect events until every one of ``ids`` is DELIVERED, then hang up at
    once (while other subscribers' changes are still being published); last status each.
    ``kind_of_client``: its class (protocol) and compression."""
    client_class, compression = kind_of_client
    client = await client_class.connect(ws_url, cookie, compression)
    try:
        last: dict[str, str] = {}
        if kind == "smsStatus":
            await client.subscribe(SMS_STATUS_SUBSCRIPTION, {"ids": ids})
            for _ in ids:  # the current statuses come first
                event = await client.next_event(timeout=60)
                last[event["notificationId"]] = event["deliveryStatus"]
        else:
            await client.subscribe(MY_NOTIFICATIONS_SUBSCRIPTION)
        ready.set()
        try:
            while any(last.get(pk) != "DELIVERED" for pk in ids):
                event = await client.next_event(timeout=30)
                last[event["notificationId"]] = event["deliveryStatus"]
        except TimeoutError:
            pass  # reported by the caller as the statuses it reached
        return last
    finally:
        await client.close()


def _run_rounds(
    ws_urls: list[str],
    session: HttpSession,
    user: Any,
    worker_env: dict[str, str],
    *,
    rounds: int,
    subscribers_per_server: int,
    one_notification: bool = False,
) -> None:
    """Each ``smsStatus`` subscriber watches a notification of its own (so it hangs up
    while the others' are still arriving); each ``myNotifications`` one watches all."""
    misses: list[str] = []
    for round_number in range(rounds):
        plan = []
        for server, ws_url in enumerate(ws_urls):
            for number in range(subscribers_per_server):
                client_class = (TransportWsClient, LegacyWsClient)[number % 2]
                compression = ("deflate", None)[number // 2 % 2]
                kind = ("smsStatus", "smsStatus", "myNotifications")[number % 3]
                name = f"server {server} #{number} {client_class.protocol} {compression} {kind}"
                plan.append((name, ws_url, (client_class, compression), kind))
        own = sum(1 for *_rest, kind in plan if kind == "smsStatus")
        ids = _create(session, user, 1 if one_notification else own)

        async def scenario(ids: list[str] = ids, plan: list = plan) -> list[dict[str, str]]:
            readies = [asyncio.Event() for _ in plan]
            tasks, mine = [], iter(ids)
            for (_name, url, client, kind), ready in zip(plan, readies, strict=True):
                watched = ids if kind != "smsStatus" or one_notification else [next(mine)]
                tasks.append(
                    asyncio.create_task(
                        _subscriber(url, session.cookie_header, client, kind, watched, ready)
                    )
                )
            await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 120)
            # A myNotifications subscription has no first event to show it started:
            # give the server a beat to run the subscribe messages it received.
            await asyncio.sleep(0.5)
            await asyncio.to_thread(run_worker, worker_env, len(ids))
            return list(await asyncio.gather(*tasks))

        results = asyncio.run(asyncio.wait_for(scenario(), 300))
        mine = iter(ids)
        for (name, _url, _class, kind), last in zip(plan, results, strict=True):
            watched = ids if kind != "smsStatus" or one_notification else [next(mine)]
            missing = {pk: last.get(pk) for pk in watched if last.get(pk) != "DELIVERED"}
            if missing:
                misses.append(f"round {round_number}, {name}: {missing}")
    assert not misses, f"{len(misses)} subscribers missed DELIVERED:\n" + "\n".join(misses[:20])


@pytest.mark.parametrize("servers", [1, 2], ids=["one-server", "two-servers"])
def test_every_subscriber_gets_every_change(live_stack, servers):
    base_url, worker_env, _emulator = live_stack(
        drain_rate="20", callback_delay_ms="0", **SERVER_ENV
    )
    user = _staff()
    session = HttpSession(base_url).login(user.username, PASSWORD)
    try:
        ws_urls = [session.ws_url]
        if servers == 1:
            _run_rounds(
                ws_urls, session, user, worker_env,
                rounds=6, subscribers_per_server=30,
            )  # fmt: skip
            return
        with run_uvicorn({**worker_env, **SERVER_ENV}) as second_url:
            ws_urls.append(second_url.replace("http://", "ws://") + "/graphql/")
            _run_rounds(
                ws_urls, session, user, worker_env,
                rounds=4, subscribers_per_server=20,
            )  # fmt: skip
    finally:
        session.close()


def test_a_few_hundred_subscribers_at_once_each_get_the_event(live_stack):
    """The connect storm of one server: 300 sockets open and subscribe together."""
    base_url, worker_env, _emulator = live_stack(
        drain_rate="100000", callback_delay_ms="0", **SERVER_ENV
    )
    user = _staff()
    session = HttpSession(base_url).login(user.username, PASSWORD)
    try:
        _run_rounds(
            [session.ws_url], session, user, worker_env,
            rounds=1, subscribers_per_server=300, one_notification=True,
        )  # fmt: skip
    finally:
        session.close()
