"""Small interfaces through which the core reaches the outside. Real implementations live beside
them (core/guardian/...) or in the entry points (workers/ for Celery); tests use fakes or stand-ins."""
