"""The JobQueue port over Celery: the core names a task; a worker runs it."""

from __future__ import annotations

from typing import Any

from core.ports.jobs import JobQueue


class CeleryJobs(JobQueue):
    def __init__(self, broker_url: str) -> None:
        from workers.celery_app import celery_app

        celery_app.conf.broker_url = broker_url
        celery_app.conf.result_backend = broker_url
        self._celery = celery_app

    def enqueue(self, name: str, **kwargs: Any) -> None:
        self._celery.send_task(name, kwargs=kwargs)
