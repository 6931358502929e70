"""Configuration: dataclasses with defaults, loaded from TOML, overridden by flags.

``configs/default.toml`` names and explains every value below; keep the two in
step (a test checks they agree).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration file or flag is wrong; the message says which and why."""


@dataclass
class SourceConfig:
    threads: int = 0  # decoder threads; 0 lets FFmpeg choose (one per core)
    thread_type: str = "FRAME"  # "FRAME" (fastest measured here), "AUTO" (frame+slice), "SLICE" or "NONE"
    fast_decode: bool = False  # skip H.264/HEVC deblocking: ~16 % faster decoding, slightly blockier pictures
    skip: str = ""  # "" decodes every frame; "bidir" skips B-frames, "nonref" non-reference frames (faster, coarser times)
    options: dict[str, str] = field(default_factory=dict)  # extra FFmpeg demuxer options
    hwaccel: str = ""  # hardware decoding through FFmpeg, e.g. "cuda"; "" = CPU; unavailable -> CPU, with one line


@dataclass
class RegionConfig:
    band: str = "auto"  # "auto" (files: bottom, plus top when found), "bottom", "top", "both", or "x0,y0,x1,y1"
    bottom: float = 0.25  # height of the bottom band as a fraction of the frame
    top: float = 0.2  # height of the top band as a fraction of the frame
    auto_samples: int = 48  # positions sampled by auto (three consecutive frames each)
    auto_min_share: float = 0.05  # auto adds the top band if centred text shows there in this share of the samples
    auto_min_lines: int = 3  # ... as at least this many different texts (a sign is one text)
    auto_centre_tolerance: float = 0.15  # ... centred: its middle within this share of the width of the frame's
    live_learn_seconds: float = 10.0  # streams with band "auto" learn their bands from this many seconds (0 = off)
    watermark_share: float = 0.8  # auto masks strokes that stay on the same pixels in this share of the samples
    watermark_seconds: float = 8.0  # ... and over at least this long (longer than a subtitle stays on screen)
    auto_decode_seconds: float = 60.0  # files with few keyframes: at most this much video decoded forward to sample


@dataclass
class DetectorConfig:
    scale: int = 2  # analyse every scale-th pixel of the band (1 = full resolution)
    bright_min: int = 170  # stroke pixels are at least this bright (0-255)
    contrast_min: int = 50  # and this much brighter than their surroundings
    contrast_share: float = 0.5  # or, in light surroundings, this share of the room between them and white (0 = off)
    contrast_floor: int = 30  # but at least this much brighter
    stroke_max: int = 9  # widest stroke, in full-resolution pixels
    dark_text: bool = False  # also detect dark text on bright plates
    min_text_pixels: float = 0.0005  # share of the band that must be stable strokes to count as text
    persist_frames: int = 3  # strokes must stay this many frames to count (filters moving backgrounds)
    lost_threshold: float = 0.25  # the text changed when this share of its strokes is gone
    gain_threshold: float = 0.35  # or when this much new stable stroke area appeared
    sample_every: int = 1  # 1 = every frame (frame-exact); N = look at every Nth frame (faster, coarser)
    reads_per_segment: int = 3  # frames of each unchanged stretch sent to OCR: its first, one every
    read_interval: float = 0.6  # seconds while it lasts, and its last; their reads are voted on


@dataclass
class RecognizerConfig:
    engine: str = "rapid"
    task: str = "recognize"  # "recognize" or "translate"
    target: str = "en"  # translation target language
    lang: str = ""  # language(s) on screen, e.g. "ru" or "ru+en"; "" = the engine's default (rapid: Chinese, Japanese, Latin)
    batch_size: int = 0  # crops per engine call; 0 = the engine's own preference
    max_wait_ms: float = 20.0  # how long a partial batch waits for more crops
    min_confidence: float = 1.0  # a segment's later frames are skipped when its first read is this confident (1.0 = read all)
    chain_reads: int = 3  # a subtitle split into segments only by clutter coming and going is read at most this often


@dataclass
class MergerConfig:
    similarity: float = 0.8  # reads at least this similar (0-1) are the same line
    max_gap: float = 0.0  # join equal text across a blank gap up to this long (seconds)
    min_duration: float = 0.1  # drop cues shorter than this (seconds)


@dataclass
class StyleConfig:
    enabled: bool = True  # reject cues outside the subtitle style learned from the video (signs, logos)
    learn_cues: int = 3  # files: cues are held until this many confident cues show the style
    min_references: int = 2  # cues are judged once this many confident subtitles of their band are known
    learn_confidence: float = 0.9  # a cue teaches the style when read this sure, >= 0.5 s long, >= 3 letters
    place_tolerance: float = 0.1  # centre (or left edge) off the subtitles' by more than this share of the width
    row_tolerance: float = 1.5  # lines ending off the subtitles' row by more than this x their line height
    height_ratio: float = 1.4  # lines taller or shorter than the subtitles' by more than this factor
    memory: int = 50  # the style is the median of this many latest subtitles per band


@dataclass
class OutputConfig:
    format: str = ""  # "srt", "vtt", "ass", "jsonl"; empty = from the output file's suffix


@dataclass
class LiveConfig:
    max_lag: float = 0.5  # seconds: frames this much older than the newest are dropped (the pipeline is behind)
    queue: int = 32  # most frames held between decoder and pipeline (a memory cap); beyond it the oldest is dropped
    decoder_threads: int = 2  # explicit decoder threads for live input (frame threading delays by threads-1 frames)
    transport: str = "tcp"  # RTSP transport: "tcp" or "udp"
    timeout: float = 5.0  # seconds without data before a network source counts as dropped
    connect_timeout: float = 10.0  # seconds a connection may take (handshake and first packets) before it is retried
    backoff_min: float = 0.5  # first reconnect delay (seconds), doubled per failed attempt
    backoff_max: float = 10.0  # longest reconnect delay (seconds)


@dataclass
class ServerConfig:
    ring: int = 1000  # final cues kept for clients that resume with ?since=SEQ
    client_queue: int = 64  # messages queued per client; partials are dropped first, then the client is closed (1013)
    ping_interval: float = 20.0  # WebSocket keepalive ping (seconds); 0 turns it off
    max_message: int = 4096  # largest message a client may send (bytes)


@dataclass
class ServeConfig:
    """``subflow serve``: the review web app and HTTP API (docs/serve.md)."""

    host: str = "127.0.0.1"  # listen address; anything beyond localhost needs token_file
    port: int = 8800
    data_dir: str = ""  # jobs database, media and crops; "" = $XDG_DATA_HOME/subflow (~/.local/share/subflow)
    media_roots: list[str] = field(default_factory=list)  # folders whose videos may be opened by path
    token_file: str = ""  # one token per line; when set, every request needs one
    allow_urls: bool = False  # let jobs read http(s) URLs (the server fetches them)
    max_upload_mb: int = 8192  # largest upload accepted
    upload_suffixes: list[str] = field(
        default_factory=lambda: [".mp4", ".mkv", ".mov", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv"]
    )
    jobs_per_engine: int = 2  # jobs run at once on one shared engine (a GPU engine batches across them)
    low_confidence: float = 0.8  # cues read with less confidence are listed as needing a look
    short_cue: float = 0.3  # cues shorter than this (seconds) are listed as needing a look (phantom-like)


@dataclass
class TranslateConfig:
    """``[translate]``: translations added to final cues (docs/translation.md)."""

    languages: list[str] = field(default_factory=list)  # target languages as BCP 47 tags (["fr", "de"]); [] = none
    translator: str = "auto"  # "auto", "image" (HunyuanOCR reads and translates) or "openai" (a chat endpoint)
    endpoint: str = ""  # OpenAI-compatible API base of the text translator, e.g. http://mt:8000/v1
    model: str = ""  # model name the endpoint serves; "" = the first one its /models lists
    api_key: str = ""  # bearer token; "" = $SUBFLOW_TRANSLATE_API_KEY or none
    glossary: str = ""  # TSV file (term, translation, note) for every language, or "LANG=FILE,LANG=FILE"
    source: str = ""  # the original's language, as a hint for the text translator; "" = let the model tell
    batch_size: int = 10  # cues per text-translator request
    context: int = 3  # earlier cues sent along as context (not translated again)
    concurrency: int = 4  # text-translator requests in flight
    retries: int = 2  # a rejected reply is asked again this often before the batch is halved
    http_retries: int = 3  # further attempts after a failed request (connection error, timeout, 5xx, 429)
    backoff: float = 0.5  # seconds before the first such attempt, doubled each time
    timeout: float = 60.0  # seconds for one request
    revive_after: float = 30.0  # after a batch found the endpoint dead, later batches skip it this long
    temperature: float = 0.0
    bilingual: bool = False  # also write NAME.bi.ass (and NAME.bi.srt/.vtt): original small above the translation


@dataclass
class BatchConfig:
    """``subflow batch``: how work is spread (none of it changes a video's output)."""

    workers: int = 0  # local mode: worker processes; 0 = one per core
    attempts: int = 3  # tries per video when the process working on it dies
    engines: int = 0  # Ray mode: engine actors; 0 = one per gpus_per_engine GPUs, else one per 4 cluster CPUs
    gpus_per_engine: float = 1.0  # Ray mode: GPUs per engine actor (GPU engines on a cluster with GPUs)
    cpus_per_engine: float = -1.0  # Ray mode: CPUs reserved by an engine actor; -1 = 1, or 0 below 4 CPUs per actor
    cpus_per_task: float = 1.0  # Ray mode: CPUs reserved by a decode+detect task
    videos_per_engine: int = 0  # Ray mode: videos feeding one engine actor at once; 0 = as many as the CPUs allow
    inflight: int = 2  # Ray mode: engine requests in flight per video (back-pressure on fast decoders)
    engine_batch: int = 0  # Ray mode: most crops per engine call, across videos; 0 = 4x the engine's own batch
    restarts: int = 3  # Ray mode: restarts of a dead engine actor (its calls are retried as many times)


@dataclass
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    region: RegionConfig = field(default_factory=RegionConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    merger: MergerConfig = field(default_factory=MergerConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)  # [engines.NAME] tables, as given

    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None, origin: str = "command line"
    ) -> "Config":
        """Defaults, then the TOML file (if any), then ``{"section.key": value}`` overrides.

        ``origin`` names where the overrides came from, for error messages."""
        config = cls()
        if path is not None:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"config file not found: {path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
            config.update(data, origin=str(path))
        config.override(overrides or {}, origin=origin)
        return config

    def override(self, overrides: dict[str, Any], origin: str) -> None:
        """Apply ``{"section.key": value}`` settings; engine options are ``"engines.NAME.OPTION"``."""
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if section == "engines":
                engine, _, option = name.partition(".")
                if not engine or not option:
                    raise ConfigError(f"{origin}: {key}: use engines.NAME.OPTION")
                self.update({"engines": {engine: {option: value}}}, origin=origin)
            else:
                self.update({section: {name: value}}, origin=origin)

    def update(self, data: dict[str, Any], origin: str = "config") -> None:
        """Merge nested ``{section: {key: value}}`` into this config, checking names and types."""
        for section_name, values in data.items():
            if section_name == "engines":
                if not isinstance(values, dict):
                    raise ConfigError(f"{origin}: [engines] must be a table of engine tables")
                for engine_name, table in values.items():
                    self.engines.setdefault(engine_name, {}).update(table)
                continue
            section = getattr(self, section_name, None)
            if section is None or not dataclasses.is_dataclass(section):
                raise ConfigError(f"{origin}: unknown section [{section_name}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{origin}: [{section_name}] must be a table")
            fields = {f.name: f for f in dataclasses.fields(section)}
            for key, value in values.items():
                if key not in fields:
                    raise ConfigError(f"{origin}: unknown setting {section_name}.{key}")
                name = f"{section_name}.{key}"
                value = coerce(value, type(getattr(section, key)), name, origin)
                check_limit(name, value, LIMITS.get(name), origin)
                setattr(section, key, value)

    def engine_options(self, name: str | None = None) -> dict[str, Any]:
        return dict(self.engines.get(name or self.recognizer.engine, {}))


def coerce(value: Any, kind: type, key: str, origin: str) -> Any:
    """Give ``value`` the type ``kind`` (the type of the default it replaces), or say clearly why not.

    Values from the command line (``--set key=value``) arrive as text; TOML values arrive typed.
    """
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif kind in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if kind is int and float(value) != int(value):
                raise ConfigError(f"{origin}: {key} must be a whole number, got {value!r}")
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(float(value)) if kind is float else int(value)
            except ValueError:
                pass
    elif kind is str:
        return str(value)
    elif kind is dict and isinstance(value, dict):
        return dict(value)
    elif kind is list:
        if isinstance(value, str):  # from --set: comma-separated
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [str(part) for part in value]
    else:
        return value
    raise ConfigError(f"{origin}: {key} must be {kind.__name__}, got {value!r}")


@dataclass(frozen=True)
class Limit:
    """The values a number setting may take: ``low`` (or above it, when ``open_low``) up to ``high``."""

    low: float
    high: float | None = None
    open_low: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        return above and (self.high is None or value <= self.high)  # False for NaN too

    def describe(self) -> str:
        low = f"{self.low:g}"
        if self.high is None:
            return f"more than {low}" if self.open_low else f"{low} or more"
        return f"more than {low} and at most {self.high:g}" if self.open_low else f"between {low} and {self.high:g}"


def check_limit(name: str, value: Any, limit: Limit | None, origin: str) -> None:
    """Raise a one-line :class:`ConfigError` naming the setting and its allowed range."""
    if limit is not None and not limit.allows(value):
        raise ConfigError(f"{origin}: {name} must be {limit.describe()}, got {value!r}")


SHARE = Limit(0.0, 1.0)  # a share or similarity: 0..1
COUNT = Limit(1)  # a count: at least one
NON_NEGATIVE = Limit(0)
POSITIVE = Limit(0, open_low=True)

# Allowed ranges of the number settings above (a setting not named here takes any value of its type).
LIMITS: dict[str, Limit] = {
    "source.threads": NON_NEGATIVE,
    "region.bottom": Limit(0, 1, open_low=True),
    "region.top": Limit(0, 1, open_low=True),
    "region.auto_samples": COUNT,
    "region.auto_min_share": SHARE,
    "region.watermark_seconds": NON_NEGATIVE,
    "region.auto_decode_seconds": NON_NEGATIVE,
    "detector.scale": COUNT,
    "detector.bright_min": Limit(0, 255),
    "detector.contrast_min": Limit(0, 255),
    "detector.contrast_share": SHARE,
    "detector.contrast_floor": Limit(0, 255),
    "detector.stroke_max": COUNT,
    "detector.min_text_pixels": SHARE,
    "detector.persist_frames": COUNT,
    "detector.lost_threshold": Limit(0, 1, open_low=True),
    "detector.gain_threshold": POSITIVE,
    "detector.sample_every": COUNT,
    "detector.reads_per_segment": COUNT,
    "detector.read_interval": NON_NEGATIVE,
    "recognizer.batch_size": NON_NEGATIVE,
    "recognizer.max_wait_ms": NON_NEGATIVE,
    "recognizer.min_confidence": SHARE,
    "recognizer.chain_reads": COUNT,
    "merger.similarity": SHARE,
    "merger.max_gap": NON_NEGATIVE,
    "merger.min_duration": NON_NEGATIVE,
    "live.max_lag": POSITIVE,
    "live.queue": COUNT,
    "live.decoder_threads": NON_NEGATIVE,
    "live.timeout": POSITIVE,
    "live.connect_timeout": POSITIVE,
    "live.backoff_min": POSITIVE,
    "live.backoff_max": POSITIVE,
    "server.ring": COUNT,
    "server.client_queue": COUNT,
    "server.ping_interval": NON_NEGATIVE,
    "server.max_message": COUNT,
    "serve.port": Limit(0, 65535),
    "serve.max_upload_mb": COUNT,
    "serve.jobs_per_engine": COUNT,
    "serve.low_confidence": SHARE,
    "serve.short_cue": NON_NEGATIVE,
    "translate.batch_size": COUNT,
    "translate.context": NON_NEGATIVE,
    "translate.concurrency": COUNT,
    "translate.retries": NON_NEGATIVE,
    "translate.http_retries": NON_NEGATIVE,
    "translate.backoff": NON_NEGATIVE,
    "translate.timeout": POSITIVE,
    "translate.revive_after": NON_NEGATIVE,
    "translate.temperature": NON_NEGATIVE,
    "batch.workers": NON_NEGATIVE,
    "batch.attempts": COUNT,
    "batch.engines": NON_NEGATIVE,
    "batch.gpus_per_engine": NON_NEGATIVE,
    "batch.cpus_per_engine": Limit(-1),
    "batch.cpus_per_task": NON_NEGATIVE,
    "batch.videos_per_engine": NON_NEGATIVE,
    "batch.inflight": COUNT,
    "batch.engine_batch": NON_NEGATIVE,
    "batch.restarts": NON_NEGATIVE,
}
