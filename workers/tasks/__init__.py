"""Celery tasks, one module per job family; each takes ids and calls a core service."""
