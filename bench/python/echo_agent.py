"""The Python SDK's echo agent, as a user writes one: the peer of bench/src/sdk-echo-agent.ts in
`npm run bench:python`. Usage: python3 bench/python/echo_agent.py <ws-url> <agent-name> <concurrency>
(with packages/sdk-python on PYTHONPATH).
"""

import asyncio
import sys

import openclaw


async def main(url: str, name: str, concurrency: int) -> None:
    client = await openclaw.connect(url)
    agent = client.agent(name, concurrency=concurrency)

    @agent.handle("echo")
    async def echo(request):
        return request.data

    await agent.register()
    print(f"{name} ready", flush=True)
    await client.wait_closed()


if __name__ == "__main__":
    url, name, concurrency = (sys.argv[1:] + ["ws://127.0.0.1:18789", "echo-py", "256"][len(sys.argv) - 1 :])[:3]
    asyncio.run(main(url, name, int(concurrency)))
