"""The README is what a new user meets first: its commands must work and its figures say where they came from."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from subflow.cli import build_parser
from subflow.config import Config
from subflow.engines.rapid import RapidOptions

pytestmark = pytest.mark.cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def commands() -> list[list[str]]:
    """Every `subflow COMMAND ...` line of the README's shell blocks, as argv (comments and pipes cut)."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].split(" | ")[0].strip()
            if line.startswith("subflow "):
                found.append(shlex.split(line)[1:])
    return found


def test_every_command_in_the_readme_parses():
    argvs = commands()
    assert len(argvs) >= 15
    parser = build_parser()
    for argv in argvs:
        if argv == ["--help"]:
            continue
        parser.parse_args(argv)  # exits (SystemExit) on an unknown option


def test_every_set_example_in_the_readme_is_accepted():
    examples = [e for e in re.findall(r"--set ([\w.-]+=[^\s`]+)", README) if not e.startswith("section.key=")]
    assert "engines.rapid.threads=1" in examples and "detector.lost_threshold=0.3" in examples
    for example in examples:
        key, value = example.split("=", 1)
        if key.startswith("engines.rapid."):
            RapidOptions.parse({key.removeprefix("engines.rapid."): value})  # typed like a number, not text
        elif key != "detector.lost_threshold" or value != "5":  # the README's own example of a refused value
            Config.load(None, {key: value})


def test_install_says_how_to_run_subflow_and_is_not_the_test_run():
    install = section("Install")
    assert "make demo" in install and ".venv/bin/subflow" in install and ".venv/bin/activate" in install
    assert "make test" not in install  # the test run is under Development
    assert "make test" in section("Development")


def test_figures_are_tables_with_machine_date_and_rerun_command():
    measured = section("Measured")
    assert "2 cores" in measured and "H200" in measured  # the machines
    paragraphs = [p for p in re.split(r"\n\n", measured) if p.startswith("**")]
    assert len(paragraphs) >= 6
    for paragraph in paragraphs:
        assert re.search(r"20\d\d-\d\d-\d\d", paragraph), paragraph[:80]
        assert "Rerun" in paragraph, paragraph[:80]
    tables = re.findall(r"^\|.*\|$", measured, re.M)
    assert len(tables) >= 30
    for work_log in ("last session", "this session", "the issue's targets", "other agents"):
        assert work_log not in README
    assert len(measured) < 0.3 * len(README)


def test_the_history_keeps_the_work_log():
    history = (ROOT / "docs" / "history.md").read_text(encoding="utf-8")
    for fact in ("106 → 79 crops", "videocr", "+334 MB per half hour", "nobuffer", "7.4–8.1x", "55.5 ms", "--fast"):
        assert fact in history, fact
    assert "docs/history.md" in README


def test_later_feature_sections_have_a_place():
    live_at = README.index("## Live\n")
    assert README.index("<!-- Feature sections", live_at) < README.index("## Limits\n")
