"""The fair queue's decisions: token shares by weight, bands, bounds, shedding and cancellation."""

from __future__ import annotations

from collections import Counter, deque

from inferflux.router.scheduling.fairqueue import Entry, FairQueue, Refusal, State


def entry(tenant: str, cost: int = 10, weight: int = 1, priority: int = 0) -> Entry:
    return Entry(tenant, weight, priority, cost)


def serve(
    queue: FairQueue, running: deque[Entry], count: int, used: dict[str, int] | None = None
) -> list[Entry]:
    """Finish the oldest running request ``count`` times; the requests that started, in order."""
    started: list[Entry] = []
    for _ in range(count):
        done = running.popleft()
        fresh = queue.done(done, (used or {}).get(done.tenant))
        running.extend(fresh)
        started.extend(fresh)
    return started


def backlog(queue: FairQueue, offers: list[Entry]) -> deque[Entry]:
    """Offer every entry; the ones that started at once."""
    running: deque[Entry] = deque()
    for item in offers:
        if queue.offer(item).state is State.RUNNING:
            running.append(item)
    return running


def test_equal_tenants_share_equally_whatever_their_arrival_order() -> None:
    queue = FairQueue(slots=1, capacity=1000)
    running = backlog(queue, [entry(t) for t in "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"])
    started = serve(queue, running, 20)
    assert Counter(e.tenant for e in started) == {"a": 5, "b": 5, "c": 5, "d": 5}


def test_weights_split_capacity_three_to_one() -> None:
    queue = FairQueue(slots=2, capacity=1000)
    running = backlog(
        queue, [entry("heavy", weight=3) for _ in range(100)] + [entry("light") for _ in range(100)]
    )
    started = serve(queue, running, 40)
    assert Counter(e.tenant for e in started) == {"heavy": 30, "light": 10}


def test_shares_are_counted_in_tokens_not_requests() -> None:
    queue = FairQueue(slots=1, capacity=1000)
    offers = [entry("long", cost=30) for _ in range(50)] + [entry("short", cost=10) for _ in range(150)]
    running = backlog(queue, offers)
    started = serve(queue, running, 80)
    tokens = Counter[str]()
    for item in started:
        tokens[item.tenant] += item.cost
    assert abs(tokens["long"] - tokens["short"]) <= 30  # one request's worth
    assert Counter(e.tenant for e in started)["short"] == 3 * Counter(e.tenant for e in started)["long"]


def test_real_usage_corrects_an_overestimate() -> None:
    queue = FairQueue(slots=1, capacity=1000)
    # "greedy" asks max_tokens=100 but uses 10; "honest" asks and uses 10: equal real shares.
    offers = [entry("greedy", cost=100) for _ in range(100)] + [entry("honest", cost=10) for _ in range(100)]
    running = backlog(queue, offers)
    started = serve(queue, running, 60, used={"greedy": 10, "honest": 10})
    counts = Counter(e.tenant for e in started)
    assert abs(counts["greedy"] - counts["honest"]) <= 2


def test_without_correction_the_estimate_counts() -> None:
    queue = FairQueue(slots=1, capacity=1000)
    offers = [entry("greedy", cost=100) for _ in range(100)] + [entry("honest", cost=10) for _ in range(100)]
    running = backlog(queue, offers)
    counts = Counter(e.tenant for e in serve(queue, running, 55))
    assert counts["honest"] >= 9 * counts["greedy"]


def test_a_flooding_tenant_gets_no_more_than_its_share() -> None:
    queue = FairQueue(slots=4, capacity=10_000)
    offers = [entry("flood") for _ in range(1000)] + [entry("calm") for _ in range(100)]
    running = backlog(queue, offers)
    counts = Counter(e.tenant for e in serve(queue, running, 100))
    assert counts == {"flood": 50, "calm": 50}


def test_an_idle_tenant_banks_no_credit() -> None:
    queue = FairQueue(slots=1, capacity=1000)
    running = backlog(queue, [entry("early") for _ in range(60)])
    serve(queue, running, 30)  # "early" alone for a while
    for _ in range(30):
        queue.offer(entry("late"))
    started = serve(queue, running, 10)
    assert Counter(e.tenant for e in started) == {"early": 5, "late": 5}


def test_higher_bands_start_first_and_lower_ones_wait() -> None:
    queue = FairQueue(slots=1, capacity=100)
    running = backlog(queue, [entry("bulk", priority=0) for _ in range(5)])
    for _ in range(3):
        queue.offer(entry("batch", priority=-1))
        queue.offer(entry("vip", priority=5))
    started = serve(queue, running, 8)
    assert [e.tenant for e in started] == ["vip"] * 3 + ["bulk"] * 4 + ["batch"]


def test_a_full_queue_refuses_the_tenant_over_its_share() -> None:
    queue = FairQueue(slots=1, capacity=4)
    backlog(queue, [entry("hog") for _ in range(5)])  # one runs, four wait: full
    refused = entry("hog")
    assert queue.offer(refused).state is State.REFUSED
    assert refused.refusal is Refusal.QUEUE_FULL
    polite = entry("polite")
    offer = queue.offer(polite)
    assert offer.state is State.QUEUED
    assert offer.displaced is not None
    assert offer.displaced.tenant == "hog"
    assert offer.displaced.refusal is Refusal.DISPLACED
    assert queue.waiting == 4
    assert queue.queued_by("hog") == 3


def test_equal_shares_in_a_full_queue_keep_the_queued() -> None:
    queue = FairQueue(slots=1, capacity=4)
    backlog(queue, [entry("a"), entry("a"), entry("a"), entry("b"), entry("b")])
    newcomer = entry("b")  # b would hold 3 of 4 places against a's 2
    assert queue.offer(newcomer).state is State.REFUSED
    assert queue.queued_by("a") == 2


def test_weights_set_the_queue_share() -> None:
    queue = FairQueue(slots=1, capacity=4)
    backlog(
        queue, [entry("x"), entry("big", weight=4), entry("big", weight=4), entry("small"), entry("small")]
    )
    # with big's third place, big holds 3 at weight 4 (0.75 per unit), small 2 at weight 1: small is
    # the one over its share, though it holds fewer places.
    offer = queue.offer(entry("big", weight=4))
    assert offer.state is State.QUEUED
    assert offer.displaced is not None
    assert offer.displaced.tenant == "small"


def test_sheddable_requests_are_refused_first() -> None:
    queue = FairQueue(slots=1, capacity=4, sheddable_share=0.5)
    running = backlog(queue, [entry("bulk", priority=-1) for _ in range(3)])  # one runs, two wait
    late = entry("bulk", priority=-1)
    assert queue.offer(late).state is State.REFUSED
    assert late.refusal is Refusal.SHED
    assert queue.offer(entry("user")).state is State.QUEUED
    assert queue.offer(entry("user")).state is State.QUEUED
    offer = queue.offer(entry("user"))  # full: a sheddable one goes, whatever the shares
    assert offer.displaced is not None
    assert offer.displaced.priority == -1
    higher = entry("other", priority=3)
    assert queue.offer(higher).displaced is not None
    assert [e.tenant for e in serve(queue, running, 4)] == ["other", "user", "user", "user"]


def test_a_lower_band_cannot_displace_a_higher_one() -> None:
    queue = FairQueue(slots=1, capacity=2)
    backlog(queue, [entry("a", priority=2) for _ in range(3)])
    low = entry("b", priority=1)
    assert queue.offer(low).state is State.REFUSED
    assert low.refusal is Refusal.QUEUE_FULL


def test_cancelling_a_waiter_frees_its_place_at_once() -> None:
    queue = FairQueue(slots=1, capacity=2)
    backlog(queue, [entry("a"), entry("a"), entry("b")])
    gone = entry("c")
    assert queue.offer(gone).state is State.REFUSED  # full, and c cannot displace a or b (1 each)
    waiting_a = next(iter(queue.bands[0].flows["a"].waiting))
    assert queue.cancel(waiting_a) == []
    assert queue.waiting == 1
    assert queue.offer(entry("c")).state is State.QUEUED


def test_cancelling_a_running_request_starts_the_next() -> None:
    queue = FairQueue(slots=1, capacity=2)
    first, second = entry("a"), entry("b")
    backlog(queue, [first, second])
    assert queue.cancel(first) == [second]
    assert second.state is State.RUNNING
    assert queue.running == 1


def test_growing_the_slots_starts_waiters_and_finished_tenants_are_forgotten() -> None:
    queue = FairQueue(slots=1, capacity=10)
    running = backlog(queue, [entry("a") for _ in range(4)])
    running.extend(queue.resize(3, 10))
    assert queue.running == 3
    assert queue.waiting == 1
    serve(queue, running, 4)
    assert queue.running == 0
    assert queue.bands == {}


def test_slots_kept_back_from_sheddable_requests_go_to_higher_bands_at_once() -> None:
    queue = FairQueue(slots=4, capacity=100, sheddable_slots=0.75)
    running = backlog(queue, [entry("bulk", priority=-1) for _ in range(10)])
    assert len(running) == 3  # the fourth slot stays free
    assert queue.running_sheddable == 3
    urgent = entry("user")
    assert queue.offer(urgent).state is State.RUNNING  # no wait behind a sheddable request
    assert queue.offer(entry("user")).state is State.QUEUED  # every slot is busy now
    started = serve(queue, running, 1)  # a sheddable request ends: the waiting user goes first
    assert [e.tenant for e in started] == ["user"]
    assert queue.running_sheddable == 2
    assert [e.tenant for e in queue.cancel(urgent)] == ["bulk"]  # sheddable back to 3 of 4
    assert (queue.running, queue.running_sheddable) == (4, 3)
    assert queue.done(started[0], None) == []  # only sheddable requests wait, holding their 3 slots
    assert queue.running == 3


def test_with_runtime_preemption_sheddable_work_fills_every_slot_and_never_blocks_the_others() -> None:
    queue = FairQueue(slots=2, capacity=100, preemptive=True)
    running = backlog(queue, [entry("bulk", priority=-1) for _ in range(6)])
    assert len(running) == 2  # sheddable requests still take only the slots there are
    urgent = [entry("user"), entry("user")]
    assert [queue.offer(e).state for e in urgent] == [State.RUNNING, State.RUNNING]  # the runtime parks bulk
    assert queue.offer(entry("user")).state is State.QUEUED  # two non-sheddable ones fill the slots
    assert queue.done(urgent[0], None)[0].tenant == "user"  # and wait only for one another
    assert queue.done(running[0], None) == []  # a sheddable one ended: still 2 + 1 running, none starts


def test_without_runtime_preemption_a_request_waits_for_a_sheddable_slot() -> None:
    queue = FairQueue(slots=2, capacity=100, preemptive=False)
    backlog(queue, [entry("bulk", priority=-1) for _ in range(6)])
    assert queue.offer(entry("user")).state is State.QUEUED
