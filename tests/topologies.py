"""Live Redis topologies for the tests: a Redis Cluster and a primary behind Sentinel.

Both are real ``redis-server`` processes on free loopback ports (``redis-server --sentinel``
for the sentinels: no other binary), started and stopped by the tests that use them.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    while True:
        port = random.randrange(20_000, 45_000)
        if _free(port) and _free(port + 10_000):
            return port


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            value = condition()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


class Node:
    """One ``redis-server`` process."""

    def __init__(
        self, workdir: Path, *args: str, port: int | None = None, sentinel: bool = False
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it.")
        self.port = port or free_port()
        self.workdir = workdir / str(self.port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not sentinel:  # a sentinel reads all of it from its file
            args = (*args, "--port", str(self.port), "--bind", "127.0.0.1")
            args = (*args, "--dir", str(self.workdir), "--save", "", "--appendonly", "no")
        self.args = [binary, *args]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.client().ping(), 10, f"redis-server on {self.port}")

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, **options)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no last replication."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """Three masters and three replicas (``redis-cli --cluster create``)."""

    def __init__(self, workdir: Path, node_timeout_ms: int = 1000) -> None:
        self.nodes = [
            Node(
                workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                str(node_timeout_ms),
                "--cluster-config-file",
                "nodes.conf",
                # A replica takes over however long since it last heard its master.
                "--cluster-replica-validity-factor",
                "0",
            )
            for _ in range(6)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        assert cli is not None
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self.wait_ok()

        def replicating() -> bool:
            replicas = [n.client().info("replication") for n in self.nodes]
            replicas = [info for info in replicas if info["role"] == "slave"]
            return len(replicas) == 3 and all(
                info.get("master_link_status") == "up" for info in replicas
            )

        wait_for(replicating, 30, "replicas in sync")

    def wait_ok(self) -> None:
        def ok() -> bool:
            for node in self.nodes:
                if not node.alive:
                    continue
                info = node.client().cluster("info")
                if info["cluster_state"] != "ok":
                    return False
            return True

        try:
            wait_for(ok, 30, "cluster_state:ok")
        except TimeoutError:
            states = {
                node.port: node.client().cluster("info")["cluster_state"]
                for node in self.nodes
                if node.alive
            }
            raise TimeoutError(f"cluster_state not ok: {states}") from None

    def masters(self) -> list[Node]:
        found = []
        for node in self.nodes:
            if node.alive and node.client().info("replication")["role"] == "master":
                found.append(node)
        return found

    def master_of(self, key: str) -> Node:
        client = RedisCluster(host="127.0.0.1", port=self.masters()[0].port)
        try:
            port = int(client.get_node_from_key(key).port)  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return next(node for node in self.nodes if node.port == port)

    def flushall(self) -> None:
        for node in self.masters():
            node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelSetup:
    """A primary, one replica and three sentinels watching them as ``mymaster``."""

    service = "mymaster"

    def __init__(self, workdir: Path, down_after_ms: int = 400) -> None:
        self.workdir = workdir
        self.primary = Node(workdir)
        self.replica = Node(workdir, "--replicaof", "127.0.0.1", str(self.primary.port))
        self.down_after_ms = down_after_ms
        self.sentinels: list[Node] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        wait_for(
            lambda: self.replica.client().info("replication").get("master_link_status") == "up",
            20,
            "replication",
        )
        for _ in range(3):
            port = free_port()
            config = self.workdir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 5000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            sentinel = Node(self.workdir, str(config), "--sentinel", port=port, sentinel=True)
            sentinel.start()
            self.sentinels.append(sentinel)
        wait_for(
            lambda: all(
                s.client().execute_command("SENTINEL", "REPLICAS", self.service)  # type: ignore[no-untyped-call]
                for s in self.sentinels
            ),
            20,
            "sentinels to see the replica",
        )

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: a planned failover (the primary is demoted, not killed).
        Asked again while the sentinels do not yet know a replica good enough to promote."""

        def asked() -> bool:
            try:
                return bool(
                    self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", self.service)  # type: ignore[no-untyped-call]
                )
            except redis.ResponseError as exc:
                if "NOGOODSLAVE" in str(exc):
                    return False
                raise

        wait_for(asked, 20, "a sentinel to accept the failover")

    def primary_port(self) -> int:
        address: Any = self.sentinels[0].client().sentinel_get_master_addr_by_name(self.service)
        return int(address[1])

    def wait_promoted(self, node: Node, timeout: float = 20.0) -> None:
        wait_for(
            lambda: (
                self.primary_port() == node.port
                and node.client().info("replication")["role"] == "master"
            ),
            timeout,
            f"{node.port} promoted",
        )

    def stop(self) -> None:
        for node in [*self.sentinels, self.primary, self.replica]:
            node.stop()


def pause(node: Node) -> None:
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)


def resume(node: Node) -> None:
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGCONT)
