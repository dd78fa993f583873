"""API latency benchmark: single create and list-100 over HTTP, beside their floor.

    .venv/bin/python bench/api.py [--requests 300] [--database sqlite|postgres]
                                  [--nodelay on|off] [--floor-checks on|off]

Starts its own Redis and a temporary SQLite database (or a throwaway PostgreSQL
cluster) and one uvicorn process, as a user would run it: DEBUG off, the
per-user rate off (``GRAPHQL_USER_RATE=0``). One logged-in client (session
cookie and CSRF header, keep-alive) sends, one request at a time:

* ``createSmsNotification`` for one SMS, and the floor: a plain Django view
  doing the same inserts and answering JSON, behind the same middleware
  (``bench/api_floor.py``);
* ``notifications(pagination: {limit: 100})`` with each one's SMS, and the
  floor: a plain view reading the same 100 rows and the count as JSON.

Both floors apply the same permission rule as the API (``has_perm``, ``visible_to``;
``--floor-checks off`` leaves it out, as the first version of this bench did).

GraphQL and floor requests alternate, so machine noise hits both alike. Prints
p50 and p99 of each, and the ratio of the p50s. The client sets TCP_NODELAY
(``--nodelay off`` to compare) so that no Nagle/delayed-ACK stall can hide the
server's own time. The load average is printed: on a shared machine absolute
figures move with it (a runnable process waits for a core), the ratios much less.

Beside the wall-clock figures, the server process's CPU time per request (mean,
from ``/proc/<pid>/stat`` read around each request; Linux): what the request
costs the server, which waiting for a core on a busy machine does not inflate.
"""

import argparse
import os
import socket
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.status import (  # noqa: E402
    make_user,
    percentile,
    setup_django,
    start_uvicorn,
    throwaway_services,  # noqa: E402
)

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id status sms { id deliveryStatus } }
    errors { field message }
  }
}
"""
LIST = """
{ notifications(pagination: {limit: 100}) {
    totalCount
    results { id title status createdDatetime sms { toPhoneNumber deliveryStatus segments } }
} }
"""


def figures(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):6.1f} ms, p99 {percentile(samples, 0.99):6.1f} ms"


def cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used so far, in ms."""
    # Fields after "pid (comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--nodelay", choices=["on", "off"], default="on", help="the client's TCP_NODELAY"
    )
    parser.add_argument(
        "--floor-checks",
        choices=["on", "off"],
        default="on",
        help="whether the floor views apply the API's permission rule",
    )
    args = parser.parse_args()

    import httpx

    from devstack.subprocesses import stop_process

    with ExitStack() as stack:
        env = {
            **throwaway_services(stack, args.database, "bench-api-"),
            "DJANGO_SETTINGS_MODULE": "bench.settings_api",
            "GRAPHQL_USER_RATE": "0",
            "SMS_USER_SEGMENTS_PER_HOUR": "0",
            "BENCH_FLOOR_CHECKS": "1" if args.floor_checks == "on" else "0",
        }
        setup_django(env)
        from django.contrib.auth.models import Permission

        user = make_user()
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="notification",
                codename__in=["add_notification", "view_notification"],
            )
        )
        python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        server, base_url = start_uvicorn({**os.environ, **env, "PYTHONPATH": python_path})
        stack.callback(stop_process, server)
        # TCP_NODELAY: httpcore may write a request's head and body separately; with
        # Nagle's algorithm a second write can wait for the server's delayed ACK.
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            if args.nodelay == "on"
            else []
        )
        client = stack.enter_context(
            httpx.Client(base_url=base_url, trust_env=False, timeout=30, transport=transport)
        )
        client.get("/graphql/", headers={"Accept": "text/html"})
        login = client.post(
            "/graphql/",
            json={
                "query": 'mutation($p: String!) { login(username: "bench", password: $p) { id } }',
                "variables": {"p": "bench-password-not-secret"},
            },
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert not login.json().get("errors"), login.text
        headers = {"X-CSRFToken": client.cookies["csrftoken"]}
        sms = {"title": "Bench", "body": "Your parcel arrives today", "userId": str(user.pk)}

        def graphql_create(number: int) -> None:
            variables = {"input": {**sms, "toPhoneNumber": f"+1 415 555 {number % 10000:04d}"}}
            reply = client.post(
                "/graphql/", json={"query": CREATE, "variables": variables}, headers=headers
            ).json()
            assert not reply.get("errors"), reply
            assert reply["data"]["createSmsNotification"]["errors"] == [], reply

        def floor_create(number: int) -> None:
            body = {**sms, "toPhoneNumber": f"+1415555{number % 10000:04d}"}
            reply = client.post("/floor/create/", json=body, headers=headers)
            assert reply.status_code == 200, reply.text

        def graphql_list(_number: int) -> None:
            reply = client.post("/graphql/", json={"query": LIST}, headers=headers).json()
            assert not reply.get("errors"), reply
            assert len(reply["data"]["notifications"]["results"]) == 100

        def floor_list(_number: int) -> None:
            reply = client.get("/floor/list/")
            assert reply.status_code == 200 and len(reply.json()["results"]) == 100

        cpu: dict[str, list[float]] = {}

        def timed(pairs: list, count: int, names: tuple[str, str]) -> list[list[float]]:
            samples: list[list[float]] = [[] for _ in pairs]
            for name in names:
                cpu[name] = []
            for number in range(-20, count):  # 20 warm-up rounds, not counted
                for index, request in enumerate(pairs):
                    cpu_before = cpu_ms(server.pid)
                    started = time.perf_counter()
                    request(number + 100_000 * index)
                    elapsed = (time.perf_counter() - started) * 1000
                    if number >= 0:
                        samples[index].append(elapsed)
                        cpu[names[index]].append(cpu_ms(server.pid) - cpu_before)
            return samples

        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"API latency, {args.database}, one uvicorn, one client, {args.requests} each")
        print(f"load average before: {load}")
        print(f"floor views apply the permission rule: {args.floor_checks}")
        create_samples, create_floor = timed(
            [graphql_create, floor_create], args.requests, ("create", "create floor")
        )
        list_samples, list_floor = timed(
            [graphql_list, floor_list], args.requests, ("list", "list floor")
        )
        for name, key, mine, floor, target in (
            ("create 1 SMS   ", "create", create_samples, create_floor, 12),
            ("list 100 + SMS ", "list", list_samples, list_floor, 18),
        ):
            ratio = statistics.median(mine) / statistics.median(floor)
            print(
                f"{name} GraphQL {figures(mine)} | floor {figures(floor)} | p50 ratio {ratio:.2f}x"
            )
            mine_cpu = statistics.fmean(cpu[key])
            floor_cpu = statistics.fmean(cpu[f"{key} floor"])
            print(
                f"{'':16}server CPU per request: GraphQL {mine_cpu:5.2f} ms | floor "
                f"{floor_cpu:5.2f} ms | ratio {mine_cpu / floor_cpu:.2f}x"
            )
            print(f"{'':16}targets: p50 <= 1.5x floor and <= {target} ms")
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"load average after: {load}")


if __name__ == "__main__":
    main()
