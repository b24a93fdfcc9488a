"""What one worker process keeps in memory while it sends: its sender threads, and which
deliveries it is sending or has just seen succeed.

Neither is a rule's state (the database holds every delivery's status, lease and attempts,
``webhooks.delivery``): the threads only decide how many POSTs go out at once, and the
memory only lets a duplicate message end without a query.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

# Threads that send the batches' POSTs, per process. A worker sizes them to its own
# ``--concurrency`` at start (``ievents.celery``), so it keeps as many POSTs in flight as
# it has threads, as when each thread sent one delivery. They only sign and POST: no
# database connection each.
THREADS = 16

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def side_by_side(send: Callable, items: list) -> list:
    """``send(item)`` for every item on the sender threads; the results in the items' order."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="webhook-send")
        pool = _pool
    return [future.result() for future in [pool.submit(send, item) for item in items]]


def size_pool(threads: int) -> None:
    """Send at most ``threads`` POSTs at once in this process (before the first batch)."""
    global THREADS
    THREADS = max(1, threads)


def _forget_pool() -> None:
    """A forked child (Celery prefork) must not inherit a pool whose threads did not survive the fork."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


class InThisProcess:
    """Deliveries this process is sending right now, or saw succeed moments ago.

    A message about one of them has nothing left to do (a batch took its delivery along,
    or it is a duplicate), so the task returns without a query. Only successes are
    remembered once sent (a failure may be retried by hand or scheduled), and only for
    one sweep interval: after that the database has the last word again, so a success
    this process saw but the database no longer holds (a backup restored, a record lost
    some other way) is sent again when the sweep's message comes, not skipped forever.
    """

    REMEMBERED = 20_000

    def __init__(self):
        self._lock = threading.Lock()
        self._sending: set[int] = set()
        self._succeeded: OrderedDict[int, float] = OrderedDict()  # delivery id -> when (monotonic), oldest first

    def knows(self, delivery_id: int) -> bool:
        with self._lock:
            if delivery_id in self._sending:
                return True
            when = self._succeeded.get(delivery_id)
            return when is not None and time.monotonic() - when < settings.WEBHOOK_SWEEP_SECONDS

    def sending(self, delivery_ids) -> None:
        with self._lock:
            self._sending.update(delivery_ids)

    def done(self, delivery_ids, succeeded_ids=()) -> None:
        now = time.monotonic()
        with self._lock:
            self._sending.difference_update(delivery_ids)
            for pk in succeeded_ids:
                self._succeeded[pk] = now
                self._succeeded.move_to_end(pk)
            while self._succeeded and (len(self._succeeded) > self.REMEMBERED
                                       or now - next(iter(self._succeeded.values())) >= settings.WEBHOOK_SWEEP_SECONDS):
                self._succeeded.popitem(last=False)


in_this_process = InThisProcess()
