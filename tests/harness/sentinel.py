"""A Redis primary, its replicas and the sentinels watching them, on 127.0.0.1.

    with run_sentinel_group(tmp_path, replicas=2, sentinels=3) as group:
        causerie serve --redis group.url   # redis+sentinel://127.0.0.1:P1,…/causerie/0
        group.primary().kill9()
        group.wait_promoted(old_port)

Sentinel is `redis-server CONF --sentinel` (the `redis-server` package; Debian's
`redis-sentinel` only adds a service unit around the same program). Each sentinel gets a
fresh configuration file it may rewrite (it records what it learns there). The servers are
configured as RELIABILITY.md asks with Sentinel: every one may become the primary, so every
one refuses writes without a replica (`min-replicas-to-write 1`), keeps an append-only file
(`appendfsync everysec`) and starts a full copy to a replica at once
(`repl-diskless-sync-delay 0`).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.harness.polling import wait_until
from tests.harness.ports import HOST, free_port
from tests.harness.processes import kill9, start_process, stop, tail
from tests.harness.redis_server import RedisServer, answers

SERVICE = "causerie"
DOWN_AFTER_MS = 1000
"""How long a primary may not answer before a sentinel thinks it down (Sentinel's default is
30 s; docs/failover.md says why 1 s)."""
SERVER_OPTIONS = (
    *("--min-replicas-to-write", "1", "--min-replicas-max-lag", "5"),
    *("--appendonly", "yes", "--appendfsync", "everysec"),
    # A replica that must copy everything again (after a manual failover, say) starts at
    # once instead of 5 s later: writes wait for it (min-replicas-to-write, WAIT).
    *("--repl-diskless-sync-delay", "0"),
)


class SentinelServer:
    """One sentinel (`redis-server sentinel.conf --sentinel`) working in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        primary_port: int,
        *,
        quorum: int,
        down_after_ms: int = DOWN_AFTER_MS,
        service: str = SERVICE,
    ) -> None:
        self.workdir = workdir
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.service = service
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "sentinel.log"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: `make test-deps` installs it (Debian)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port may be taken before the sentinel binds it
            self.port = free_port()
            config = self.workdir / "sentinel.conf"
            config.write_text(
                f"bind {HOST}\nport {self.port}\ndir {self.workdir}\n"
                f"sentinel monitor {self.service} {HOST} {self.primary_port} {self.quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 10000\n"
                f"sentinel parallel-syncs {self.service} 2\n"
            )
            self.process = start_process([binary, str(config), "--sentinel"], self.log)
            process = self.process
            wait_until(
                lambda p=process: p.poll() is not None or answers(self.port),
                timeout,
                lambda: f"a sentinel answering; {tail(self.log)}",
                every=0.02,
            )
            if process.poll() is None:
                return
        raise RuntimeError(f"redis-server --sentinel did not start: {tail(self.log)}")

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, socket_timeout=2)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def kill9(self) -> None:
        assert self.process is not None
        kill9(self.process)


@dataclass
class SentinelGroup:
    """`servers[0]` started as the primary; `sentinels` watch it under `service`."""

    servers: list[RedisServer]
    sentinels: list[SentinelServer]
    service: str = SERVICE

    def url(self, **options: object) -> str:
        """The `--redis` URL of the group (cluster/redis_url.py), with these options."""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis+sentinel://{hosts}/{self.service}/0" + (f"?{query}" if query else "")

    def named_primary(self, sentinel: SentinelServer) -> int | None:
        """The primary's port as `sentinel` names it now (None: it does not answer)."""
        with contextlib.suppress(redis.RedisError, OSError), sentinel.client() as client:
            address = client.sentinel_get_master_addr_by_name(self.service)
            return int(address[1]) if address else None
        return None

    def primary(self) -> RedisServer:
        """The server the first sentinel names as the primary."""
        port = self.named_primary(self.sentinels[0])
        return next(s for s in self.servers if s.port == port)

    def ready(self) -> bool:
        """Every sentinel knows the primary, each replica and each other sentinel, and every
        replica is in sync (a failover needs all of it)."""
        replicas = len(self.servers) - 1
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    state = client.sentinel_master(self.service)
            except (redis.RedisError, OSError):
                return False
            if (
                state["num-slaves"] != replicas
                or state["num-other-sentinels"] != len(self.sentinels) - 1
            ):
                return False
        primary = self.primary()
        with redis.Redis(host=HOST, port=primary.port, decode_responses=True) as client:
            info = client.info("replication")
        online = [info.get(f"slave{i}", {}).get("state") for i in range(replicas)]
        return info.get("connected_slaves") == replicas and online == ["online"] * replicas

    def wait_ready(self, timeout: float = 30.0) -> float:
        return wait_until(self.ready, timeout, self._describe("the sentinel group ready"), 0.1)

    def wait_promoted(self, old_port: int, timeout: float = 20.0) -> float:
        """Until every sentinel names a primary other than `old_port` that says it is one;
        the seconds it took."""

        def promoted() -> bool:
            ports = {self.named_primary(s) for s in self.sentinels}
            if len(ports) != 1 or None in ports or old_port in ports:
                return False
            with redis.Redis(host=HOST, port=ports.pop(), decode_responses=True) as client:
                return bool(client.role()[0] == "master")

        return wait_until(promoted, timeout, self._describe("a replica promoted"), every=0.05)

    def stop(self) -> None:
        for each in (*self.sentinels, *self.servers):
            each.stop()

    def _describe(self, what: str) -> Callable[[], str]:
        def describe() -> str:
            logs = [tail(s.log, 800) for s in self.sentinels]
            return f"{what}; sentinel logs: " + " | ".join(logs)

        return describe


@contextlib.contextmanager
def run_sentinel_group(
    workdir: Path,
    *,
    replicas: int = 2,
    sentinels: int = 3,
    down_after_ms: int = DOWN_AFTER_MS,
    server_options: tuple[str, ...] = SERVER_OPTIONS,
) -> Iterator[SentinelGroup]:
    """A primary with `replicas` replicas and `sentinels` sentinels (quorum: a majority), all
    ready for a failover, until the block ends."""
    primary = RedisServer(workdir / "redis-0", options=server_options)
    group = SentinelGroup([primary], [])
    try:
        primary.start()
        for i in range(1, replicas + 1):
            replica = RedisServer(
                workdir / f"redis-{i}", replica_of=primary.port, options=server_options
            )
            group.servers.append(replica)
            replica.start()
        for i in range(sentinels):
            sentinel = SentinelServer(
                workdir / f"sentinel-{i}",
                primary.port or 0,
                quorum=sentinels // 2 + 1,
                down_after_ms=down_after_ms,
            )
            group.sentinels.append(sentinel)
            sentinel.start()
        group.wait_ready()
        yield group
    finally:
        group.stop()
