"""A bounded loopback load test of the throttles: while one client floods ``smsSegments``
and another guesses a password, a legitimate user's requests and login still succeed,
and the abusers are limited. Latency is printed by ``bench/throttles.py``, not asserted.
"""

import pytest
from django.contrib.auth import get_user_model

from tests.support.live_support import run_uvicorn
from tests.support.throttle_traffic import run_traffic

RATE = 30
MAX_FAILURES = 5


@pytest.fixture
def users(transactional_db):
    model = get_user_model()
    return {
        name: (
            model.objects.create_user(name, password=f"{name}-password").username,
            f"{name}-password",
        )
        for name in ("legit", "abuser", "target")
    }


@pytest.mark.usefixtures("redis")
def test_abusers_are_limited_while_legitimate_traffic_goes_through(subprocess_env, users):
    env = {
        **subprocess_env,
        "GRAPHQL_USER_RATE": str(RATE),
        "LOGIN_MAX_FAILURES": str(MAX_FAILURES),
    }
    proxy = ("--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    with run_uvicorn(env, None, *proxy) as base_url:
        report = run_traffic(
            base_url, legit=users["legit"], abuser=users["abuser"], target=users["target"]
        )

    # The legitimate user: every request answered, none limited, and can still log in.
    assert report.legit_codes == [None] * 20
    assert report.legit_login_code is None
    # The flood: exactly the minute's budget got through (the run is far shorter than
    # the window), everything else was refused with the rate-limit code.
    assert len(report.abuser_codes) == 148  # 150 split over 4 threads
    assert report.abuser_codes.count(None) == RATE
    assert set(report.abuser_codes) == {None, "rate_limited"}
    # The guesser: locked out after MAX_FAILURES, and so is the target account,
    # even with the right password from an address that never failed.
    assert all(code is None for code in report.guess_codes[:MAX_FAILURES])  # wrong password
    assert set(report.guess_codes[MAX_FAILURES:]) == {"login_locked"}
    assert report.target_login_code == "login_locked"
