"""Token buckets and Retry-After values, on a fake clock."""

from __future__ import annotations

from services.ingest.limits import TokenBucket, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=10, clock=clock)
    assert bucket.take(10) == 0
    assert bucket.take(4) == 2.0  # four tokens at two per second
    clock.now = 1.0
    assert bucket.take(2) == 0
    assert bucket.take(1) == 0.5
    clock.now = 100.0  # never more than the burst saved up
    assert bucket.take(10) == 0
    assert bucket.take(1) > 0


def test_a_request_above_the_burst_costs_the_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=5, clock=Clock())
    assert bucket.take(1000) == 0
    assert bucket.take(1) == 1.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.01) == "1"
    assert retry_after(2.2) == "3"
