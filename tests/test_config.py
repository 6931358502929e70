"""configs/default.toml names every setting with the code's default, and bad settings fail clearly."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from subflow.config import LIMITS, Config, ConfigError
from subflow.engines.rapid import RapidOptions
from subflow.engines.tesseract import TesseractOptions

DEFAULT = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


def test_default_toml_lists_every_setting_with_the_code_default():
    data = tomllib.loads(DEFAULT.read_text())
    config = Config()
    sections = {f.name for f in dataclasses.fields(Config)} - {"engines"}
    assert sections <= set(data), f"missing sections: {sections - set(data)}"
    for name in sections:
        section = getattr(config, name)
        expected = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
        assert data[name] == expected, f"[{name}] differs from the code"
    assert data["engines"]["rapid"] == dataclasses.asdict(RapidOptions())
    assert data["engines"]["tesseract"] == dataclasses.asdict(TesseractOptions())


def test_file_then_overrides(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[detector]\nsample_every = 3\n[region]\nband = "top"\n[engines.rapid]\ndetect = "lines"\n')
    config = Config.load(path, {"detector.sample_every": "5"})
    assert config.detector.sample_every == 5 and config.region.band == "top"
    assert config.engine_options("rapid") == {"detect": "lines"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[detectr]\nscale = 1\n", "unknown section"),
        ("[detector]\nscael = 1\n", "unknown setting detector.scael"),
        ("[detector]\nscale = 'big'\n", "must be int"),
        ("[detector]\nscale = 1.5\n", "whole number"),
        ("[detector\n", "not valid TOML"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        Config.load(path)
    assert "\n" not in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        Config.load("/nonexistent/subflow.toml")


def test_every_limit_names_a_number_setting():
    config = Config()
    for name in LIMITS:
        section, key = name.split(".")
        assert isinstance(getattr(getattr(config, section), key), (int, float)), name


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("detector.lost_threshold", "5", "detector.lost_threshold must be more than 0 and at most 1, got 5.0"),
        ("detector.lost_threshold", "0", "more than 0"),
        ("merger.similarity", "-0.1", "merger.similarity must be between 0 and 1"),
        ("live.queue", "0", "live.queue must be 1 or more, got 0"),
        ("detector.read_interval", "nan", "detector.read_interval must be 0 or more"),
    ],
)
def test_out_of_range_settings_name_the_setting_and_the_range(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Config.load(None, {key: value})
    assert "\n" not in str(info.value)


def test_settings_at_the_edges_of_their_ranges_are_accepted():
    config = Config.load(None, {"detector.lost_threshold": "1", "merger.similarity": "0", "live.queue": "1"})
    assert (config.detector.lost_threshold, config.merger.similarity, config.live.queue) == (1.0, 0.0, 1)
