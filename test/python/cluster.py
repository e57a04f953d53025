"""A real cluster for the Python tests: a redis-server and gateway replicas in child processes.

The replicas are the project's own (`node packages/cli/dist/bin.js gateway start`), started on free
ports against a Redis of their own; nothing here uses a Redis or gateway the machine already runs.
Build the packages first (`npm run build`, which `npm test` and `npm ci` do).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "packages" / "cli" / "dist" / "bin.js"
#: The static API key of the test cluster (role admin, tenant default).
API_KEY = "python-tests-static-key-0001"


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node() -> str:
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node is not on PATH: the gateway replicas are Node.js processes")
    return found


def _wait_for(predicate, what: str, timeout: float = 15.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A redis-server on a free port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(self._answers, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Gateway:
    """One gateway replica. `start()` waits for its "gateway ready" log line and reads its port."""

    replica_id: str
    redis_url: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[str] | None = None
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        """Starts the replica (on its old port, when it ran before) and waits until it is ready."""
        ready = threading.Event()
        args = [node(), str(CLI), "gateway", "start", "--port", str(self.port), "--host", "127.0.0.1"]
        args += ["--redis", self.redis_url, "--replica-id", self.replica_id]
        self.process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def read(stream) -> None:
            for line in stream:
                self.logs.append(line.rstrip())
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") == "gateway ready" and isinstance(record.get("port"), int):
                    self.port = record["port"]
                    ready.set()

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            tail = "\n".join(self.logs)
            raise RuntimeError(f"gateway {self.replica_id} was not ready within {timeout} s:\n{tail}")

    def kill(self) -> None:
        """Kills the replica at once (SIGKILL): its connections drop without a close frame."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stops the replica as an orchestrator would (SIGTERM: it drains, then exits)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """A Redis and `replicas` gateway replicas sharing it, with API-key authentication."""

    def __init__(self, replicas: int = 2, api_keys: tuple[str, ...] = (), extra_env: dict[str, str] | None = None):
        if not CLI.exists():
            raise RuntimeError(f"{CLI} does not exist: build the packages first (npm run build)")
        self.redis = RedisServer()
        self.api_keys = api_keys
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_") and k != "REDIS_URL"}
        env["OPENCLAW_AUTH"] = "apikey" if api_keys else "none"
        if api_keys:
            env["OPENCLAW_API_KEYS"] = ",".join(api_keys)
        env["OPENCLAW_LOG_LEVEL"] = "info"
        env.update(extra_env or {})
        self.gateways = [
            Gateway(replica_id=f"py-{chr(ord('a') + i)}", redis_url=self.redis.url, env=env) for i in range(replicas)
        ]

    def start(self) -> "Cluster":
        self.redis.start()
        errors: list[BaseException] = []

        def guarded(gateway: Gateway) -> None:
            try:
                gateway.start()
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=guarded, args=(g,)) for g in self.gateways]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        return self

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.kill()
        self.redis.stop()
