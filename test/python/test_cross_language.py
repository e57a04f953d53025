"""The Python SDK against real gateway replicas and Redis, and against the TypeScript SDK: a Python
agent answering a TypeScript caller on another replica and the reverse (the examples of both
languages, as a user runs them), reconnection after a replica is killed, cancellation reaching a
Python handler, a raising handler, refused credentials, and a slow consumer closed with 1013."""

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

import openclaw
from cluster import API_KEY, REPO_ROOT, node

FAST = openclaw.ReconnectOptions(initial_delay=0.05, max_delay=0.5)


async def wait_until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def start_example(command: list[str], url: str, ready: str) -> asyncio.subprocess.Process:
    """Starts an example agent as a user does, and waits for its ready line."""
    env = {**os.environ, "OPENCLAW_URL": url, "OPENCLAW_API_KEY": API_KEY}
    env["PYTHONPATH"] = str(REPO_ROOT / "packages" / "sdk-python")
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    seen = []
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        if not line:
            raise AssertionError(f"{command} exited before it was ready: {seen}")
        seen.append(line.decode().rstrip())
        if ready in seen[-1]:
            return process


async def run_example(command: list[str], url: str) -> tuple[int, str]:
    env = {**os.environ, "OPENCLAW_URL": url, "OPENCLAW_API_KEY": API_KEY}
    env["PYTHONPATH"] = str(REPO_ROOT / "packages" / "sdk-python")
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, output.decode()


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def registered(client: openclaw.GatewayClient, agent: str) -> bool:
    return any(a["name"] == agent and a["instances"] > 0 for a in await client.agents_list())


PYTHON_AGENT = [sys.executable, "examples/python/agent.py"]
PYTHON_CALLER = [sys.executable, "examples/python/caller.py"]
NODE_AGENT = ["node", "examples/agent.mjs"]
NODE_CALLER = ["node", "examples/caller.mjs"]


@pytest.mark.parametrize(
    "agent_command, caller_command, printed",
    [
        (PYTHON_AGENT, NODE_CALLER, ["progress { stage: 'counting' }", "output { words: 4 }"]),
        (NODE_AGENT, PYTHON_CALLER, ["progress {'stage': 'counting'}", "output {'words': 4}"]),
    ],
    ids=["python agent, typescript caller", "typescript agent, python caller"],
)
async def test_the_examples_of_each_language_answer_the_other_across_replicas(
    cluster, agent_command, caller_command, printed
):
    """The five-minute examples as a user runs them: the agent on replica A, the caller on replica B."""
    a, b = cluster.gateways
    resolve = lambda command: [node() if command[0] == "node" else command[0], *command[1:]]  # noqa: E731
    agent = await start_example(resolve(agent_command), a.url, "my-agent is ready")
    try:
        code, output = await run_example(resolve(caller_command), b.url)
        assert code == 0, output
        for line in printed:
            assert line in output
    finally:
        await stop(agent)


async def test_cancellation_reaches_the_python_handler(cluster):
    a, b = cluster.gateways
    agent_client = await openclaw.connect(a.url, api_key=API_KEY, reconnect=FAST)
    caller = await openclaw.connect(b.url, api_key=API_KEY, reconnect=FAST)
    started, reasons = asyncio.Event(), []
    try:
        agent = agent_client.agent("py-slow")

        @agent.handle("work")
        async def work(request):
            started.set()
            try:
                await asyncio.sleep(30)
            finally:
                reasons.append(request.cancel_reason.code if request.cancel_reason else None)

        await agent.register()
        call = asyncio.create_task(caller.call("py-slow", "work", {"n": 1}, timeout=20))
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_until(lambda: reasons == ["CANCELED"], "the handler to see its cancellation")
        assert agent.in_flight == 0
    finally:
        await caller.close()
        await agent_client.close()


async def test_a_raising_handler_becomes_task_error_for_the_caller(cluster):
    a, b = cluster.gateways
    agent_client = await openclaw.connect(a.url, api_key=API_KEY, reconnect=FAST)
    caller = await openclaw.connect(b.url, api_key=API_KEY, reconnect=FAST)
    try:
        agent = agent_client.agent("py-failing")

        @agent.handle("divide")
        async def divide(request):
            return request.data["a"] / request.data["b"]

        @agent.handle("quote")
        async def quote(request):
            raise openclaw.GatewayError("OUT_OF_STOCK", "none left", retryable=True)

        await agent.register()
        assert await caller.call("py-failing", "divide", {"a": 6, "b": 3}) == 2
        with pytest.raises(openclaw.GatewayError) as plain:
            await caller.call("py-failing", "divide", {"a": 1, "b": 0})
        assert plain.value.code == "AGENT_ERROR"
        assert plain.value.message == "division by zero"
        with pytest.raises(openclaw.GatewayError) as coded:
            await caller.call("py-failing", "quote", None)
        assert coded.value.code == "AGENT_ERROR"
        assert coded.value.message == "none left"
        assert coded.value.retryable is True
        assert coded.value.details["agentCode"] == "OUT_OF_STOCK"
    finally:
        await caller.close()
        await agent_client.close()


async def test_refused_credentials_raise_authentication_error_without_retrying(cluster):
    with pytest.raises(openclaw.AuthenticationError) as refused:
        await openclaw.connect(cluster.gateways[0].url, api_key="not-a-key-of-this-cluster", reconnect=FAST)
    assert refused.value.code == "UNAUTHENTICATED"
    assert refused.value.retryable is False
    with pytest.raises(openclaw.AuthenticationError):
        await openclaw.connect(cluster.gateways[1].url, reconnect=FAST)


async def test_a_slow_consumer_is_closed_with_1013_and_comes_back(cluster):
    """An agent that blocks its event loop (a synchronous sleep in a handler) stops reading while 400
    tasks of 64 KiB come for it: its replica closes it with 1013 rather than buffer them, and the SDK
    connects again, registers again and serves."""
    a, b = cluster.gateways
    agent_client = await openclaw.connect(a.url, api_key=API_KEY, reconnect=FAST)
    disconnects = []
    agent_client.on("disconnected", lambda info: disconnects.append(info.code))
    agent = agent_client.agent("py-stuck", concurrency=1000)
    blocked = threading.Event()

    @agent.handle("echo")
    async def echo(request):
        if not blocked.is_set():
            blocked.set()
            time.sleep(4)  # the mistake: a blocking call in an async handler stalls the whole client
        return {"size": len(request.data)}

    await agent.register()
    outcomes = []

    async def flood() -> None:
        async with await openclaw.connect(b.url, api_key=API_KEY) as caller:
            data = "x" * 65536
            calls = [caller.call("py-stuck", "echo", data, timeout=15, transparent_retry=False) for _ in range(400)]
            outcomes.extend(await asyncio.gather(*calls, return_exceptions=True))

    # The caller runs on its own event loop: this one is about to be blocked.
    flooder = threading.Thread(target=lambda: asyncio.run(flood()))
    flooder.start()
    try:
        await wait_until(lambda: 1013 in disconnects, "the replica to close the stuck agent with 1013", timeout=30)
        await wait_until(lambda: agent.registered, "the agent to register again", timeout=15)
        async with await openclaw.connect(b.url, api_key=API_KEY) as caller:
            assert await caller.call("py-stuck", "echo", "again") == {"size": 5}
    finally:
        await asyncio.get_running_loop().run_in_executor(None, flooder.join, 60)
        await agent_client.close()
    # Every call of the flood ended (answered, or failed when the agent's connection went): none hangs.
    assert len(outcomes) == 400


async def test_an_agent_connects_again_after_its_replica_is_killed(cluster):
    """Runs last in this file: it kills replica A and starts it again on the same port."""
    a, b = cluster.gateways
    agent_client = await openclaw.connect(a.url, api_key=API_KEY, reconnect=FAST)
    caller = await openclaw.connect(b.url, api_key=API_KEY, reconnect=FAST)
    connections = []
    agent_client.on("connected", lambda info: connections.append(info.reconnected))
    try:
        agent = agent_client.agent("py-survivor")

        @agent.handle("echo")
        async def echo(request):
            return request.data

        await agent.register()
        assert await caller.call("py-survivor", "echo", 1) == 1
        await asyncio.get_running_loop().run_in_executor(None, a.kill)
        await wait_until(lambda: not agent.registered, "the agent to notice its replica is gone")
        await asyncio.get_running_loop().run_in_executor(None, a.start)
        await wait_until(lambda: True in connections and agent.registered, "the agent to connect and register again")
        # The caller's replica learns of the new instance within its registry's refresh.
        deadline = time.monotonic() + 15
        while True:
            try:
                assert await caller.call("py-survivor", "echo", 2, transparent_retry=True) == 2
                break
            except openclaw.GatewayError as error:
                if time.monotonic() > deadline or error.code not in ("AGENT_NOT_FOUND", "AGENT_UNAVAILABLE"):
                    raise
                await asyncio.sleep(0.1)
    finally:
        await caller.close()
        await agent_client.close()


def test_the_package_installs_with_pip_without_a_package_index(tmp_path):
    """`pip install --no-build-isolation packages/sdk-python`, as docs/python-sdk.md says, on a
    machine that reaches no package index (`--no-index`): then imported from outside the checkout."""
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps", "--quiet"]
        + ["--target", str(target), str(REPO_ROOT / "packages" / "sdk-python")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    imported = subprocess.run(
        [sys.executable, "-c", "import openclaw, pathlib; print(openclaw.__version__, pathlib.Path(openclaw.__file__).parent)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert imported.returncode == 0, imported.stderr
    version, location = imported.stdout.split()
    assert version == openclaw.__version__
    assert location == str(target / "openclaw")
    assert (target / "openclaw" / "py.typed").exists()
