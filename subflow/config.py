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


@dataclass
class DetectorConfig:
    scale: int = 2  # analyse every scale-th pixel of the band (1 = full resolution)
    bright_min: int = 170  # stroke pixels are at least this bright (0-255)
    contrast_min: int = 50  # and this much brighter than their surroundings
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
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)  # [engines.NAME] tables, as given

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> "Config":
        """Defaults, then the TOML file (if any), then ``{"section.key": value}`` overrides."""
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
        config.override(overrides or {}, origin="command line")
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
                setattr(section, key, _coerce(getattr(section, key), value, f"{section_name}.{key}", origin))

    def engine_options(self, name: str | None = None) -> dict[str, Any]:
        return dict(self.engines.get(name or self.recognizer.engine, {}))


def _coerce(current: Any, value: Any, key: str, origin: str) -> Any:
    """Give ``value`` the type of the default it replaces, or say clearly why not."""
    kind = type(current)
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
    else:
        return value
    raise ConfigError(f"{origin}: {key} must be {kind.__name__}, got {value!r}")
