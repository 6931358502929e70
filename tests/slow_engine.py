"""The default engine made slow, as a busy or remote engine is: OCR falls far behind decoding, so reads
are always in flight when a run is interrupted. Used by the shutdown tests of test_cli.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from subflow.engines import ENGINES
from subflow.engines.rapid import RapidEngine

DELAY = 0.25  # seconds added to every engine call


class SlowRapid(RapidEngine):
    name = "slow-rapid"
    max_batch = 1

    async def recognize(self, crops, task):
        await asyncio.sleep(DELAY)
        return await super().recognize(crops, task)


def register() -> None:
    """Make ``--engine slow-rapid`` and ``extract(..., engine="slow-rapid")`` available in this process."""
    ENGINES["slow-rapid"] = "slow_engine:SlowRapid"


if __name__ == "__main__":  # python tests/slow_engine.py extract ... : the CLI with the slow engine registered
    sys.path.insert(0, str(Path(__file__).parent))
    register()
    from subflow.cli import main

    sys.exit(main(sys.argv[1:]))
