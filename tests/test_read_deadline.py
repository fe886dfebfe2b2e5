"""ReadDeadline: the per-connection read timeout that costs nothing per read."""

from __future__ import annotations

import asyncio
import time

import pytest

from mailhub.net.read_deadline import ReadDeadline


async def _sleep_then(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


def test_a_read_past_its_deadline_raises_timeout() -> None:
    async def main() -> float:
        d = ReadDeadline()
        t = time.monotonic()
        with pytest.raises(TimeoutError):
            await d.run(_sleep_then("late", 5), 0.2)
        d.close()
        return time.monotonic() - t

    assert 0.15 < asyncio.run(main()) < 2


def test_reads_that_keep_coming_move_the_deadline() -> None:
    """Twenty reads of 0.05 s under a 0.2 s timeout: 1 s in all, never a timeout."""

    async def main() -> list[str]:
        d = ReadDeadline()
        out = [await d.run(_sleep_then(str(i), 0.05), 0.2) for i in range(20)]
        d.close()
        return out

    assert asyncio.run(main()) == [str(i) for i in range(20)]


def test_a_shorter_timeout_after_a_longer_one_still_fires() -> None:
    async def main() -> None:
        d = ReadDeadline()
        assert await d.run(_sleep_then("x", 0.01), 60) == "x"
        with pytest.raises(TimeoutError):
            await d.run(_sleep_then("late", 5), 0.1)
        d.close()

    asyncio.run(asyncio.wait_for(main(), 3))


def test_no_timeout_means_no_timer() -> None:
    async def main() -> None:
        d = ReadDeadline()
        assert await d.run(_sleep_then("y", 0.05), None) == "y"
        assert d._timer is None

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        d = ReadDeadline()
        task = asyncio.ensure_future(d.run(_sleep_then("z", 5), 10))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        d.close()

    asyncio.run(main())


def test_close_stops_the_timer() -> None:
    async def main() -> None:
        d = ReadDeadline()
        await d.run(_sleep_then("w", 0.01), 30)
        timer = d._timer
        assert timer is not None
        d.close()
        assert timer.cancelled() and d._timer is None

    asyncio.run(main())
