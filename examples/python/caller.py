"""A caller: asks `my-agent` to process some text and prints the progress and the output.

Run from the repository root while an agent runs (examples/python/agent.py or examples/agent.mjs):
    PYTHONPATH=packages/sdk-python python3 examples/python/caller.py
"""

import asyncio
import os
import sys

import openclaw


async def main() -> int:
    async with await openclaw.connect(
        os.environ.get("OPENCLAW_URL", "ws://127.0.0.1:18789"),
        api_key=os.environ.get("OPENCLAW_API_KEY"),
    ) as client:
        try:
            output = await client.call(
                "my-agent",
                "process-data",
                {"text": "hello from the caller"},
                timeout=10,
                on_progress=lambda progress: print("progress", progress, flush=True),
            )
        except openclaw.GatewayError as error:
            print(error.code, error.message, file=sys.stderr)
            return 1
        print("output", output, flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
