"""``subflow score``: how close predicted cues are to a ground-truth subtitle file.

Matching rule: a predicted cue and a true cue can match when they are in the
same region (top/bottom) and their temporal IoU (overlap / union of the two
time spans) is at least 0.5. Pairs are taken greedily by descending IoU, each
cue used at most once. Within a region, cues that do not overlap one another
give every cue at most one candidate above 0.5, so greedy equals the optimal
one-to-one assignment there.

From the matches: cue precision/recall/F1; the character error rate over
matched pairs (edit distance / true characters, whitespace collapsed, tags
stripped) and the share of exact texts; start and end errors; and
*fragments*: unmatched predictions that lie mostly (more than half of their
duration) inside a true cue that already has a match, the trace of a cue
split in two.
"""

from __future__ import annotations

import argparse
import bisect
import html
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import srt

from .records import Cue, Position

MIN_IOU = 0.5


class ScoreError(ValueError):
    """A subtitle file cannot be read or parsed; the message names the file."""


# --- reading cue files ------------------------------------------------------------------

_AN_TAG = re.compile(r"\\an([1-9])")
_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # SRT files borrow ASS override blocks such as {\an8}
_HTML_TAG = re.compile(r"</?(?:[ibus]|font(?:\s[^>]*)?)>", re.IGNORECASE)  # the tags SRT players know
_VTT_TAG = re.compile(r"<[^>]*>")
_VTT_TIME = re.compile(r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$")
_VTT_BLANK = re.compile(r"\n[ \t]*\n")


def _region(an: int | None) -> Position:
    return "top" if an in (7, 8, 9) else "bottom"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _split_lines(text: str) -> list[str]:
    # Not str.splitlines(): it also breaks at U+2028, U+0085 and friends,
    # which are ordinary characters inside an ASS or JSON line.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _srt_cues(text: str) -> list[Cue]:
    cues = []
    for sub in srt.parse(text):
        content = sub.content
        tags = [_AN_TAG.search(block) for block in _OVERRIDE.findall(content)]
        an = next((int(m.group(1)) for m in tags if m), None)
        content = _HTML_TAG.sub("", _OVERRIDE.sub("", content))
        cues.append(
            Cue(len(cues) + 1, sub.start.total_seconds(), sub.end.total_seconds(), _lines(content), region=_region(an))
        )
    return cues


def _vtt_seconds(stamp: str) -> float:
    m = _VTT_TIME.match(stamp)
    if m is None:
        raise ValueError(f"bad WebVTT timestamp {stamp!r}")
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in m.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _vtt_region(settings: list[str]) -> Position:
    """``line:`` below 50% or a non-negative line number counts from the top."""
    for setting in settings:
        if setting.startswith("line:"):
            value = setting[5:].split(",")[0]
            if value.endswith("%"):
                return "top" if float(value[:-1]) < 50 else "bottom"
            return "top" if int(value) >= 0 else "bottom"
    return "bottom"


def _vtt_cues(text: str) -> list[Cue]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = _VTT_BLANK.split(text.strip("\n"))
    if not blocks[0].startswith("WEBVTT"):
        raise ValueError("no WEBVTT header")
    cues = []
    for block in blocks[1:]:
        lines = block.split("\n")
        timing = next((i for i, line in enumerate(lines[:2]) if "-->" in line), None)
        if timing is None:
            if lines[0].startswith(("NOTE", "STYLE", "REGION")):
                continue
            raise ValueError(f"cue without a timing line: {lines[0][:40]!r}")
        start, _, rest = lines[timing].partition("-->")
        end, *settings = rest.split()
        payload = html.unescape(_VTT_TAG.sub("", "\n".join(lines[timing + 1 :])))
        cues.append(
            Cue(
                len(cues) + 1,
                _vtt_seconds(start.strip()),
                _vtt_seconds(end),
                _lines(payload),
                region=_vtt_region(settings),
            )
        )
    return cues


def _ass_seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.strip().split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _ass_text(raw: str) -> tuple[str, int | None]:
    """Plain text and \\an alignment of an ASS Dialogue text field."""
    out: list[str] = []
    an = None
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in "Nn":
                out.append("\n")
            elif nxt == "h":
                out.append(" ")
            elif nxt in "{}":
                out.append(nxt)
            else:  # a plain backslash (our writer follows it with a zero-width space)
                out.append("\\" if nxt == "\u200b" else "\\" + nxt)
            i += 2
        elif char == "{" and "}" in raw[i:]:
            close = raw.index("}", i)
            tag = _AN_TAG.search(raw, i, close)
            if tag:
                an = int(tag.group(1))
            i = close + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), an


def _ass_cues(text: str) -> list[Cue]:
    fields: list[str] | None = None
    cues = []
    for line in _split_lines(text):
        key, _, value = line.partition(":")
        if key == "Format" and "Text" in value:
            fields = [f.strip() for f in value.split(",")]
        elif key == "Dialogue":
            if fields is None:
                raise ValueError("Dialogue line before the [Events] Format line")
            row = dict(zip(fields, value.split(",", len(fields) - 1)))
            plain, an = _ass_text(row["Text"])
            cues.append(
                Cue(
                    len(cues) + 1,
                    _ass_seconds(row["Start"]),
                    _ass_seconds(row["End"]),
                    _lines(plain),
                    region=_region(an),
                )
            )
    return cues


def _jsonl_cues(text: str) -> list[Cue]:
    cues = []
    for number, line in enumerate(_split_lines(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if isinstance(record, dict) and record.get("rejected"):
                continue  # read, but rejected as scene text: kept as evidence, not a cue
            if isinstance(record, dict) and record.get("translation"):
                continue  # a live session's translation revision of a cue already read
            lines = record["lines"] if "lines" in record else _lines(record["text"])
            cues.append(
                Cue(
                    len(cues) + 1,
                    float(record["start"]),
                    float(record["end"]),
                    [str(text) for text in lines],
                    region="top" if record.get("region") == "top" else "bottom",
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"line {number}: not a cue record ({exc})") from None
    return cues


_READERS = {
    ".srt": _srt_cues,
    ".vtt": _vtt_cues,
    ".ass": _ass_cues,
    ".ssa": _ass_cues,
    ".jsonl": _jsonl_cues,
    ".json": _jsonl_cues,
}


def load_cues(path: str | Path) -> list[Cue]:
    """Cues of an SRT, WebVTT, ASS or JSON Lines file (by suffix), tags stripped,
    region from the alignment tag or cue setting ("top" or "bottom")."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ScoreError(f"{path}: unknown subtitle format (use one of {', '.join(_READERS)})")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScoreError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ScoreError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ScoreError(f"{path}: {exc.strerror}") from None
    try:
        return reader(text)
    except (srt.SRTParseError, ValueError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ScoreError(f"{path}: cannot parse as {path.suffix[1:].upper()}: {first_line[:200]}") from None


# --- scoring ------------------------------------------------------------------------------


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def normalize(text: str) -> str:
    """Text as compared: zero-width characters dropped, whitespace (line breaks
    included) collapsed to single spaces."""
    return " ".join(text.translate(_INVISIBLE).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute: cost 1), two rows of memory."""
    shortest = min(len(a), len(b))
    head = 0
    while head < shortest and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < shortest - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    a, b = a[head : len(a) - tail], b[head : len(b) - tail]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _overlap(a: Cue, b: Cue) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def _side(cue: Cue) -> str:
    """Ground truth knows only top and bottom; a custom band counts as bottom."""
    return "top" if cue.region == "top" else "bottom"


def _iou(a: Cue, b: Cue) -> float:
    inter = _overlap(a, b)
    union = max(a.end, b.end) - min(a.start, b.start)
    return inter / union if union > 0 else 0.0


class _Overlaps:
    """Finds the cues of a list that overlap a time span without a scan of the
    whole list (a film has over a thousand cues on each side)."""

    def __init__(self, cues: list[Cue], keep: set[int] | None = None) -> None:
        self.cues = cues
        self.order = sorted((i for i in range(len(cues)) if keep is None or i in keep), key=lambda i: cues[i].start)
        self.starts = [cues[i].start for i in self.order]
        self.longest = max((cues[i].duration for i in self.order), default=0.0)

    def of(self, cue: Cue) -> list[int]:
        """Indexes of the cues in the same region as ``cue`` that share some time with it."""
        lo = bisect.bisect_left(self.starts, cue.start - self.longest)
        hi = bisect.bisect_left(self.starts, cue.end)
        return [i for i in self.order[lo:hi] if _side(self.cues[i]) == _side(cue) and _overlap(self.cues[i], cue) > 0]


def match(gt: list[Cue], pred: list[Cue]) -> list[tuple[int, int]]:
    """One-to-one (gt index, pred index) pairs, by the rule in the module docstring."""
    overlaps = _Overlaps(pred)
    candidates = []
    for gi, g in enumerate(gt):
        for pi in overlaps.of(g):
            iou = _iou(g, pred[pi])
            if iou >= MIN_IOU:
                candidates.append((-iou, gi, pi))
    candidates.sort()
    used_gt: set[int] = set()
    used_pred: set[int] = set()
    pairs = []
    for _, gi, pi in candidates:
        if gi not in used_gt and pi not in used_pred:
            used_gt.add(gi)
            used_pred.add(pi)
            pairs.append((gi, pi))
    return sorted(pairs)


@dataclass
class Score:
    """Agreement of predicted cues with ground truth. Times in milliseconds;
    text and timing figures are over matched pairs (None when there are none)."""

    gt: int
    pred: int
    matched: int
    fragments: int
    precision: float
    recall: float
    f1: float
    cer: float | None
    exact_rate: float | None
    start_p50_ms: float | None
    start_p95_ms: float | None
    end_p50_ms: float | None
    end_p95_ms: float | None
    start_bias_ms: float | None  # mean of pred - gt: positive means late
    end_bias_ms: float | None
    frame_duration: float | None = None  # seconds; when set, errors are also given in frames

    _TIMINGS = ("start_p50_ms", "start_p95_ms", "end_p50_ms", "end_p95_ms")

    def frames(self, ms: float | None) -> float | None:
        if ms is None or not self.frame_duration:
            return None
        return ms / (self.frame_duration * 1000)

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.frame_duration:
            for key in self._TIMINGS:
                out[key.replace("_ms", "_frames")] = self.frames(out[key])
        return out

    def format(self) -> str:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.2f}%"

        def timing(name: str) -> str:
            p50, p95 = getattr(self, f"{name}_p50_ms"), getattr(self, f"{name}_p95_ms")
            if p50 is None:
                return f"{name:<6} n/a"
            text = f"{name:<6} |error| p50 {p50:.0f} ms  p95 {p95:.0f} ms"
            if self.frame_duration:
                text += f" ({self.frames(p50):.1f} / {self.frames(p95):.1f} frames)"
            return text + f"  bias {getattr(self, f'{name}_bias_ms'):+.0f} ms"

        return "\n".join(
            [
                f"cues   gt {self.gt}  pred {self.pred}  matched {self.matched}  fragments {self.fragments}",
                f"match  precision {self.precision:.3f}  recall {self.recall:.3f}  F1 {self.f1:.3f}",
                f"text   CER {pct(self.cer)}  exact {pct(self.exact_rate)}",
                timing("start"),
                timing("end"),
            ]
        )


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score(gt: list[Cue], pred: list[Cue], frame_duration: float | None = None) -> Score:
    """Score ``pred`` against ``gt`` (see the module docstring for the rules)."""
    pairs = match(gt, pred)
    matched_gt = {gi for gi, _ in pairs}
    matched_pred = {pi for _, pi in pairs}

    fragments = 0
    matched_overlaps = _Overlaps(gt, keep=matched_gt)
    for pi, p in enumerate(pred):
        if pi not in matched_pred and any(_overlap(p, gt[gi]) > 0.5 * p.duration for gi in matched_overlaps.of(p)):
            fragments += 1

    errors = 0
    chars = 0
    exact = 0
    start_err, end_err = [], []
    for gi, pi in pairs:
        truth, guess = normalize(gt[gi].text), normalize(pred[pi].text)
        errors += edit_distance(truth, guess)
        chars += len(truth)
        exact += truth == guess
        start_err.append(1000 * (pred[pi].start - gt[gi].start))
        end_err.append(1000 * (pred[pi].end - gt[gi].end))

    n = len(pairs)
    precision = n / len(pred) if pred else float(not gt)
    recall = n / len(gt) if gt else float(not pred)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    abs_start = [abs(e) for e in start_err]
    abs_end = [abs(e) for e in end_err]
    return Score(
        gt=len(gt),
        pred=len(pred),
        matched=n,
        fragments=fragments,
        precision=precision,
        recall=recall,
        f1=f1,
        cer=(errors / chars if chars else float(errors > 0)) if n else None,
        exact_rate=exact / n if n else None,
        start_p50_ms=_percentile(abs_start, 50),
        start_p95_ms=_percentile(abs_start, 95),
        end_p50_ms=_percentile(abs_end, 50),
        end_p95_ms=_percentile(abs_end, 95),
        start_bias_ms=_mean(start_err),
        end_bias_ms=_mean(end_err),
        frame_duration=frame_duration,
    )


# --- CLI ----------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "score",
        help="compare predicted subtitles with ground truth",
        description="Compare predicted cues (SRT, VTT, ASS or JSON Lines) with a ground-truth subtitle file: "
        "cue precision/recall/F1 (same region, temporal IoU >= 0.5), text CER, start/end errors, fragments.",
    )
    parser.add_argument("gt", type=Path, help="ground-truth subtitle file")
    parser.add_argument("pred", type=Path, help="predicted subtitle file")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    parser.add_argument("--fps", type=_positive, help="also give timing errors in frames of this rate")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the score of ``args.pred`` against ``args.gt``; bad files raise ``ScoreError``."""
    result = score(load_cues(args.gt), load_cues(args.pred), frame_duration=1 / args.fps if args.fps else None)
    print(json.dumps(result.to_dict()) if args.json else result.format())
    return 0
