"""The tesseract engine (scripts the rapid model lacks) beside the rapid engine, in one run.

1. Engine alone, on rendered 720p band crops (1-2 lines, plain and busy backgrounds alternating):
   rapid on English lines, tesseract on the very same crops (``--lang en``), and tesseract on the
   same lines in Russian (``--lang ru``). Crops per second and character error rate.
2. End to end (``extract``, default options otherwise) on the committed samples: en_basic with
   rapid and with tesseract (same video, same crops), ru_basic and ko_basic with ``--lang``.

Run under the heavy lock when the figures are to be reported::

    flock /tmp/subflow-heavy.lock .venv/bin/python benchmarks/scripts_bench.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_rapid import char_error, machine, render_band, run_engine  # noqa: E402

LINES = [  # English and Russian, line for line
    (["I told you not to come back here."], ["Я же говорил тебе не возвращаться."]),
    (["Where were you last night?", "At home."], ["Где ты был вчера вечером?", "Дома."]),
    (["Thank you."], ["Спасибо."]),
    (["This has nothing to do with you"], ["Это не имеет к тебе отношения"]),
    (["We leave at eight tomorrow morning"], ["Мы уезжаем завтра в восемь утра"]),
    (["Wait! Don't go!"], ["Подожди! Не уходи!"]),
]


def engine_part(count: int, repeat: int) -> None:
    from subflow.engines import create_engine

    bands = {lang: [(LINES[i % len(LINES)][k], render_band(LINES[i % len(LINES)][k], (1280, 180), clutter=i % 2 == 1,
                                                           seed=i)) for i in range(count)]
             for k, lang in enumerate(("en", "ru"))}
    runs = [("rapid", "en", create_engine("rapid")), ("tesseract --lang en", "en", create_engine("tesseract", lang="en")),
            ("tesseract --lang ru", "ru", create_engine("tesseract", lang="ru"))]
    print(f"{'engine':>22} {'lines':>6} {'crops':>5} {'crops/s':>8} {'ms/crop':>8} {'CER plain':>10} {'CER busy':>9}")
    for label, lang, engine in runs:
        crops = [crop for _, crop in bands[lang]]
        run_engine(engine, crops[:1], 1)  # load the models outside the timing
        best, reads = float("inf"), []
        for _ in range(repeat):
            start = time.perf_counter()
            reads = run_engine(engine, crops, engine.max_batch)
            best = min(best, time.perf_counter() - start)
        errors = [char_error(truth, got) for (truth, _), got in zip(bands[lang], reads)]
        plain, busy = errors[0::2], errors[1::2]
        print(f"{label:>22} {lang:>6} {len(crops):5} {len(crops) / best:8.2f} {best * 1000 / len(crops):8.1f} "
              f"{sum(plain) / len(plain):10.3f} {sum(busy) / len(busy):9.3f}")


def extract_part() -> None:
    from subflow.config import Config
    from subflow.engines import create_engine
    from subflow.engines.languages import engine_for
    from subflow.pipeline import Pipeline
    from subflow.score import load_cues, score
    from subflow.source import VideoSource

    runs = [("en_basic", "rapid", ""), ("en_basic", "tesseract", "en"), ("ru_basic", "rapid", "ru"),
            ("ko_basic", "rapid", "ko")]
    print(f"\n{'sample':>10} {'engine':>10} {'--lang':>6} {'x real time':>11} {'F1':>6} {'CER':>7} {'crops':>5}")
    for name, engine_name, lang in runs:
        chosen = engine_for(engine_name, lang)
        engine = create_engine(chosen, **({"lang": lang} if chosen == "tesseract" else {}))
        engine.read([render_band(LINES[0][0])])  # load the models outside the timing
        path = ROOT / "samples" / f"{name}.mp4"
        config = Config()
        config.recognizer.lang = lang
        pipeline = Pipeline(config, engine)
        started = time.perf_counter()
        with VideoSource(path) as source:
            cues = [u.cue for u in pipeline.updates(source) if u.final and not u.meta.get("retracted")]
            duration = source.duration
        wall = time.perf_counter() - started
        result = score(load_cues(path.with_suffix(".srt")), cues, frame_duration=1 / 25)
        print(f"{name:>10} {chosen:>10} {lang or '-':>6} {duration / wall:11.1f} {result.f1:6.3f} {result.cer:7.2%} "
              f"{pipeline.stats.crops_read:5}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=24, help="band crops per engine (default 24)")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over the crops; the best is kept")
    args = parser.parse_args(argv)
    from importlib.metadata import version

    print(f"{machine()}; tesserocr {version('tesserocr')}\n")
    engine_part(args.crops, args.repeat)
    extract_part()
    return 0


if __name__ == "__main__":
    sys.exit(main())
