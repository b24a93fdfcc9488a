"""Fixtures for fault tests: private services and a way to start and always stop processes.

Every service a test stops or restarts is its own (``PrivateRedis``, ``PrivatePostgres``);
the shared PostgreSQL and Redis of the machine are only used the way every other test
uses them (pytest's own test database), never stopped.
"""

import os

import pytest

from .stack import (
    CeleryWorker,
    PrivatePostgres,
    PrivateRedis,
    WebServer,
    app_env,
    missing_binaries,
)

# Delivery timings shortened for tests: retries a second apart, a sweep every second.
# The timeout must stay below the lease (a worker owns a delivery for the whole attempt).
FAST = {
    "WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1,1,1,1",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "6",
    "WEBHOOK_TIMEOUT_SECONDS": "5",
}


@pytest.fixture(autouse=True)
def _binaries():
    missing = missing_binaries()
    if missing:
        message = f"fault tests need {', '.join(missing)}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


class Processes:
    """Everything a test started, stopped in reverse order whatever happens."""

    def __init__(self):
        self.started = []

    def add(self, thing):
        self.started.append(thing)
        return thing

    def redis(self) -> PrivateRedis:
        return self.add(PrivateRedis()).start()

    def web(self, database_url: str, broker_url: str, *, threads: int = 8, **env) -> WebServer:
        return self.add(WebServer(app_env(database_url, broker_url, **env), threads=threads)).start()

    def worker(self, name: str, database_url: str, broker_url: str, *, beat: bool = True, concurrency: int = 4,
               **env) -> CeleryWorker:
        worker = CeleryWorker(name=name, beat=beat, concurrency=concurrency,
                              env={"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url, **FAST, **env})
        return self.add(worker).start()

    def stop_all(self):
        for thing in reversed(self.started):
            try:
                thing.stop()
            except Exception as exc:  # one stubborn process must not keep the others running
                print(f"could not stop {thing!r}: {exc}")


@pytest.fixture
def processes():
    started = Processes()
    yield started
    started.stop_all()


@pytest.fixture
def private_postgres():
    cluster = PrivatePostgres().init()
    cluster.start()
    yield cluster
    cluster.destroy()
