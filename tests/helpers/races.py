"""Running functions at the same moment, to race them against each other.

    first, second = run_concurrently(lambda: buy(a), lambda: buy(b), catch=(ApplicationError,))

Each function runs in its own thread, so in its own database connection (Django's connections
are per thread): the race is between real transactions, as between two workers. They all wait
at one barrier and start together; each thread closes its connections when its function ends.
The results come back in the order of the functions. An exception of a type in `catch` takes
its function's place in the results (a refusal the test expects); any other is raised again
in the test once every thread has finished. Tests that race the database need
`django_db(transaction=True)`: the threads cannot see the test's own open transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

_MISSING = object()


def run_concurrently(
    *jobs: Callable[[], Any], catch: tuple[type[BaseException], ...] = (), timeout: float = 60.0
) -> list[Any]:
    """Run `jobs` in threads started together; their results (or caught exceptions) in order."""
    if not jobs:
        raise ValueError("run_concurrently needs at least one function")
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [_MISSING] * len(jobs)
    raised: list[tuple[int, BaseException]] = []

    def work(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = job()
        except catch as error:
            results[index] = error
        except BaseException as error:
            raised.append((index, error))
        finally:
            connections.close_all()  # this thread's connections

    threads = [
        threading.Thread(target=work, args=(index, job), name=f"race-{index}", daemon=True)
        for index, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise AssertionError(f"{', '.join(stuck)} did not finish within {timeout:.0f} s")
    if raised:
        _, error = min(raised, key=lambda item: item[0])
        raise error
    return results


def overtaken_while_held(
    monkeypatch: Any, owner: Any, name: str, *, run: Callable[[], Any], change: Callable[[], Any], hold: float = 0.5
) -> list[str]:
    """A run of `run` is held up at its first call of `owner.name` (a slow node, after it read
    what it will write); meanwhile `change` commits and a second run starts, with `hold`
    seconds to overtake the first; then the first goes on. The order the runs finished in:
    ["first", "second"] when the second waited for the first (a lock), as a test of "a run that
    read the old state cannot write it after the run that read the change" expects."""
    real = getattr(owner, name)
    reached, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        if not reached.is_set():
            reached.set()
            assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)

    def one(label: str) -> None:
        try:
            run()
            finished.append(label)
        finally:
            connections.close_all()  # this thread's connections

    first = threading.Thread(target=one, args=("first",), daemon=True)
    first.start()
    assert reached.wait(10), f"the first run never reached {name}"
    change()
    second = threading.Thread(target=one, args=("second",), daemon=True)
    second.start()
    time.sleep(hold)  # long enough for an unlocked second run to write first
    release.set()
    first.join(20)
    second.join(20)
    return finished
