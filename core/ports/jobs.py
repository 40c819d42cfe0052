"""Background jobs: the core names a job and its arguments; an entry point (Celery) runs it."""

from __future__ import annotations

import abc
from typing import Any


class JobQueue(abc.ABC):
    """Enqueue a named job with JSON-able keyword arguments. Called only after a commit."""

    @abc.abstractmethod
    def enqueue(self, name: str, **kwargs: Any) -> None: ...


class NoJobs(JobQueue):
    """For processes that run no background work (the bench, some tests): drops jobs, counting them."""

    def __init__(self) -> None:
        self.dropped: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, name: str, **kwargs: Any) -> None:
        self.dropped.append((name, kwargs))
