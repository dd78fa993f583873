"""The retry delay: nominal 30 s doubling per failed attempt up to 30 min, each scaled by
a random factor in [0.5, 1] ("equal jitter"). Many draws per attempt pin the bounds:
every draw inside them, and some draws near each end."""

import pytest

from notification.delivery import retry_delay

DRAWS = 2000


@pytest.mark.parametrize(
    ("attempts", "nominal"),
    [(1, 30), (2, 60), (3, 120), (6, 960), (7, 1800), (12, 1800)],
)
def test_retry_delay_stays_within_half_and_all_of_the_nominal_delay(attempts, nominal):
    delays = [retry_delay(attempts).total_seconds() for _ in range(DRAWS)]
    assert all(nominal * 0.5 <= delay <= nominal for delay in delays)
    assert min(delays) < nominal * 0.52 and max(delays) > nominal * 0.98
