"""Print the captions of a running `subflow live` session as they arrive.

    subflow live rtsp://cam.local/stream --ws :8765 &
    python examples/live_client.py ws://localhost:8765/ws [--token TOKEN]

Partials are shown on one line that is rewritten in place; finals are printed
with their media times. The client reconnects and resumes by itself, so stopping
and restarting the network (or the server) loses no final cue.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from subflow.live.client import CaptionClient, ClientError


async def main(url: str, token: str | None) -> None:
    async for message in CaptionClient(url, token=token):
        kind = message["type"]
        if kind == "status":
            print(f"\r\033[K[source {message['state']}] {message.get('reason', '')}", file=sys.stderr)
        elif kind == "cue" and message["final"] and not message.get("retracted"):
            cue = message["cue"]
            print(f"\r\033[K{cue['start']:9.2f} -> {cue['end']:9.2f}  {cue['text']!r}")
        elif kind == "cue" and not message["final"]:
            print(f"\r\033[K… {message['cue']['text']}", end="", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="ws://localhost:8765/ws")
    parser.add_argument("--token")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.url, args.token))
    except ClientError as exc:
        sys.exit(f"live_client: {exc}")
    except KeyboardInterrupt:
        pass
