"""configs/default.toml names every setting with the code's default, and bad settings fail clearly."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from subflow.config import Config, ConfigError
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
