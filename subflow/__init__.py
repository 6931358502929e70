"""subflow: burned-in subtitles out of videos and live streams, as timed cues.

The public API is a lazy generator of cues::

    from subflow import extract
    for cue in extract("movie.mp4"):
        print(cue.start, cue.end, cue.text)
"""

from __future__ import annotations

from .records import Box, Cue, CueUpdate, Recognition, Task

__version__ = "0.1.0"


def extract(source, **options):
    """Yield the final cues of ``source`` one by one as they close (see :func:`subflow.pipeline.extract`)."""
    from .pipeline import extract as _extract

    return _extract(source, **options)


def stream(source, **options):
    """Yield partial, final and clear updates (see :func:`subflow.pipeline.stream`)."""
    from .pipeline import stream as _stream

    return _stream(source, **options)


__all__ = ["Box", "Cue", "CueUpdate", "Recognition", "Task", "extract", "stream", "__version__"]
