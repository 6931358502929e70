"""Run one HunyuanOCR engine in this process (the vLLM test environment's python) and print JSON.

The tests call it as a subprocess because vLLM and torch live in their own
environment, and because vLLM patches transformers' HunYuanVL classes
process-wide (the transformers engine must not share a process with it).

usage: python drive_engine.py ENGINE OPTIONS_JSON VIDEO CROPS_NPZ
prints one JSON line: {"cues": [[start, end, lines], ...], "texts": [...], "stats": {...}}
"""

from __future__ import annotations

import json
import sys

import numpy as np

from subflow.engines import create_engine
from subflow.pipeline import extract
from subflow.records import Task
from subflow.recognizer import run_on_engine_loop


def main(name: str, options: str, video: str, crops_file: str) -> None:
    engine = create_engine(name, **json.loads(options))
    try:
        cues = [[cue.start, cue.end, cue.lines] for cue in extract(video, engine=engine)]
        crops = list(np.load(crops_file).values())
        reads = run_on_engine_loop(engine.recognize(crops, Task()))
        stats = {key: getattr(engine, key) for key in ("peak_inflight", "peak_batched") if hasattr(engine, key)}
    finally:
        run_on_engine_loop(engine.aclose())
    print(json.dumps({"cues": cues, "texts": [read.text for read in reads], "stats": stats}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
