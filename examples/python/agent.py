"""An agent: registers as `my-agent` and counts the words of the text it is given.

Run from the repository root with the stack up (`npm start`):
    PYTHONPATH=packages/sdk-python python3 examples/python/agent.py
"""

import asyncio
import os

import openclaw


async def main() -> None:
    client = await openclaw.connect(
        os.environ.get("OPENCLAW_URL", "ws://127.0.0.1:18789"),
        api_key=os.environ.get("OPENCLAW_API_KEY"),
    )
    agent = client.agent("my-agent", concurrency=4)

    @agent.handle("process-data")
    async def process_data(request):
        request.progress({"stage": "counting"})
        text = request.data.get("text", "") if isinstance(request.data, dict) else ""
        return {"words": len(text.split())}

    await agent.register()
    print("my-agent is ready; Ctrl-C to stop", flush=True)
    await client.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
