"""The bound on a worker process's API requests in flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from evalfleet.workers.resources import InFlightBound


def test_no_more_than_the_bound_hold_it_at_once_and_every_waiter_gets_a_turn() -> None:
    # Given a bound of 3 and 12 threads that each hold it for a moment
    bound = InFlightBound(3)
    holding, most, served = 0, 0, 0
    lock = threading.Lock()

    def request() -> None:
        nonlocal holding, most, served
        with bound:
            with lock:
                holding += 1
                most = max(most, holding)
            time.sleep(0.01)
            with lock:
                holding -= 1
                served += 1

    # When all of them ask at once
    with ThreadPoolExecutor(12) as pool:
        for future in [pool.submit(request) for _ in range(12)]:
            future.result(timeout=10)

    # Then all were served, never more than 3 at a time, and 3 did run together
    assert served == 12
    assert most == 3


def test_a_holder_that_raises_gives_its_place_back() -> None:
    # Given a bound of 1 whose holder fails
    bound = InFlightBound(1)
    try:
        with bound:
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass

    # When the next request asks, then it gets the place at once
    acquired = threading.Event()

    def request() -> None:
        with bound:
            acquired.set()

    thread = threading.Thread(target=request)
    thread.start()
    thread.join(timeout=5)
    assert acquired.is_set()
