"""The workers' fair share per address (``sandbox.slots.Slots``), as pure scheduling."""

from __future__ import annotations

import asyncio

import pytest

from chainlens.sandbox.slots import Slots


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_the_last_normal_slot_is_kept_for_an_address_with_nothing_running() -> None:
    async def main() -> None:
        s = Slots(normal=2, long=4, long_per_client=1)
        await s.acquire("attacker")
        second = asyncio.create_task(s.acquire("attacker"))  # would take the last slot
        await asyncio.sleep(0)
        assert not second.done() and s.waiting == 1
        await asyncio.wait_for(s.acquire("newcomer"), 1)  # the newcomer takes it at once
        assert s.normal_free == 0
        s.release("newcomer", promoted=False)
        await asyncio.sleep(0)
        assert not second.done()  # still kept: the attacker has a run in progress
        s.release("attacker", promoted=False)
        await asyncio.wait_for(second, 1)  # nothing running now: it may take one
        second.result()

    run(main())


def test_a_long_run_leaves_its_slot_within_its_addresss_share() -> None:
    async def main() -> None:
        s = Slots(normal=2, long=4, long_per_client=1)
        await s.acquire("a")
        assert s.promote("a") and s.normal_free == 2 and s.long_free == 3
        await asyncio.wait_for(s.acquire("a"), 1)  # a has a run in progress; two slots are free
        assert not s.promote("a")  # its long share is used: it keeps its normal slot
        await asyncio.wait_for(s.acquire("b"), 1)
        assert s.promote("b")
        s.release("a", promoted=True)
        s.release("a", promoted=False)
        s.release("b", promoted=True)
        assert (s.normal_free, s.long_free, dict(s.running), dict(s.long_held)) == (2, 4, {}, {})

    run(main())


def test_a_waiter_that_gives_up_leaves_no_trace() -> None:
    async def main() -> None:
        s = Slots(normal=1, long=1, long_per_client=1)
        await s.acquire("a")
        waiter = asyncio.create_task(s.acquire("a"))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert s.waiting == 0
        s.release("a", promoted=False)
        assert (s.normal_free, dict(s.running)) == (1, {})

    run(main())


def test_someone_waiting_moves_a_long_enough_run_out_at_once() -> None:
    """``on_wait`` is asked to make room when a newcomer must wait; what it promotes frees
    the slot for the newcomer there and then."""

    async def main() -> None:
        s = Slots(normal=1, long=1, long_per_client=1)
        await s.acquire("bomb")
        s.on_wait = lambda: s.promote("bomb") and None
        await asyncio.wait_for(s.acquire("newcomer"), 1)
        assert dict(s.long_held) == {"bomb": 1} and s.normal_free == 0

    run(main())
