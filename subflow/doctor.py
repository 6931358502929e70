"""``subflow doctor``: which engines can run here, and for each thing missing, the fix.

One line per check: ``ok``, ``warn`` (an optional engine cannot run) or
``FAIL`` (subflow itself cannot run, or an endpoint you named is down). Cheap:
nothing heavy is imported (vLLM and torch are looked up, not loaded, except
torch for the GPU check when it is installed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .config import Config, ConfigError
from .engines import install_hint
from .engines.base import EngineError
from .engines.hunyuan import describe_adjustments, installed_vllm, vllm_adjustments
from .engines.hunyuan_api import normalise_endpoint
from .engines.hunyuan_common import DEFAULT_MODEL
from .engines.languages import LANGUAGES, installed_tesseract, readable



@dataclass
class Check:
    status: str  # "ok", "warn", "FAIL"
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:5s} {self.name:27s} {self.detail}" + (f"  -> {self.fix}" if self.fix else "")


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _at_least(version: str, minimum: tuple[int, ...]) -> bool:
    parts = []
    for piece in version.split("+")[0].split(".")[: len(minimum)]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= minimum


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 11):
        return Check("FAIL", "python", version, "subflow needs Python 3.11 or newer")
    return Check("ok", "python", f"{version} ({sys.executable})")


def check_pyav() -> Check:
    try:
        import av
    except ImportError as exc:
        return Check("FAIL", "pyav/ffmpeg", f"PyAV missing ({exc})", install_hint())
    codec = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    try:
        av.codec.Codec("h264", "r")
        h264 = "H.264 decoding"
    except Exception:  # noqa: BLE001 - any failure means no decoder
        return Check("warn", "pyav/ffmpeg", f"av {av.__version__}, libavcodec {codec}, no H.264 decoder",
                     "install a PyAV wheel built with H.264 (the PyPI wheels have it)")
    return Check("ok", "pyav/ffmpeg", f"av {av.__version__}, libavcodec {codec}, {h264}")


def check_rapid() -> Check:
    missing = [name for name in ("rapidocr", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        return Check("warn", "engine rapid", f"missing {', '.join(missing)}", install_hint())
    return Check("ok", "engine rapid", f"rapidocr {_version('rapidocr')}, onnxruntime {_version('onnxruntime')}")


def check_tesseract() -> Check:
    found = installed_tesseract()
    if importlib.util.find_spec("tesserocr") is None:
        return Check("warn", "engine tesseract", "tesserocr not installed (reads Cyrillic, Korean, Arabic, Thai)",
                     "pip install 'subflow[scripts]'")
    if not any(not language.rapid and language.tesseract in found for language in LANGUAGES.values()):
        return Check("warn", "engine tesseract", f"tesserocr {_version('tesserocr')}, no language data for it",
                     "apt-get install tesseract-ocr-rus (one package per language; see the scripts line)")
    return Check("ok", "engine tesseract", f"tesserocr {_version('tesserocr')}, data in {found[next(iter(found))]}")


def check_scripts() -> Check:
    """Which languages --lang can read here, and the package for each one that it cannot."""
    tesseract = importlib.util.find_spec("tesserocr") is not None
    found = installed_tesseract()
    here = readable(tesseract, found)
    rapid = [language.code for language in here if language.rapid]
    extra = [language.code for language in here if not language.rapid]
    detail = f"--lang {' '.join(rapid)} (rapid)" + (f"; {' '.join(extra)} (tesseract)" if extra else "")
    missing = [language for language in LANGUAGES.values() if language not in here]
    if not missing:
        return Check("ok", "languages", detail)
    packages = " ".join(language.package for language in missing if language.tesseract not in found)
    fix = f"for {' '.join(language.code for language in missing)}: "
    fix += ("" if tesseract else "pip install 'subflow[scripts]'" + (" and " if packages else ""))
    fix += f"apt-get install {packages}" if packages else ""
    return Check("ok" if extra else "warn", "languages", detail, fix)


def check_gpu() -> Check:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.TimeoutExpired):
            gpus = []
        if gpus:
            return Check("ok", "gpu", "; ".join(gpus))
        return Check("warn", "gpu", "nvidia-smi found but lists no GPU", "check the NVIDIA driver (nvidia-smi)")
    return Check("warn", "gpu", "no NVIDIA GPU (nvidia-smi not found)",
                 "HunyuanOCR is fast only on a GPU: use --engine rapid here, or --engine hunyuan-api with a GPU server")


def check_torch() -> Check:
    version = _version("torch")
    if version is None:
        return Check("warn", "torch", "not installed", install_hint("transformers"))
    import torch

    cuda = torch.cuda.is_available()
    return Check("ok" if cuda else "warn", "torch", f"{version}, CUDA {'available' if cuda else 'not available'}",
                 "" if cuda else "install a CUDA build of PyTorch for the GPU engines")


def check_transformers() -> Check:
    version = _version("transformers")
    if version is None or not _at_least(version, (5, 13)) or _version("torch") is None:
        found = f"transformers {version}" if version else "transformers not installed"
        return Check("warn", "engine hunyuan-transformers", f"{found} (needs >= 5.13 and torch)", install_hint("transformers"))
    return Check("ok", "engine hunyuan-transformers", f"transformers {version}")


def check_vllm() -> Check:
    version, native = installed_vllm()
    if version is None:
        return Check("warn", "engine hunyuan", "vLLM not installed", install_hint("vllm") + " (needs a CUDA GPU)")
    if not _at_least(version, (0, 13)):
        return Check("warn", "engine hunyuan", f"vLLM {version} is too old (batched images mix answers before 0.13)",
                     "pip install -U 'vllm>=0.13'")
    model = "its own HunYuanVL model" if native else "HunYuanVL through its Transformers backend"
    adjusted = describe_adjustments(vllm_adjustments(native))
    return Check("ok", "engine hunyuan", f"vLLM {version}, {model}; the engine sets: {adjusted}")


def check_model(model: str, revision: str) -> Check:
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return Check("ok", "model", f"local checkpoint {path}")
        return Check("FAIL", "model", f"{path} has no config.json", "point engines.*.model at a HunyuanOCR checkpoint folder")
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    cached = hub / ("models--" + model.replace("/", "--"))
    snapshots = sorted(p.name for p in (cached / "snapshots").glob("*")) if cached.is_dir() else []
    if not snapshots:
        return Check("warn", "model", f"{model} not in the cache ({hub})",
                     f"the first GPU run downloads it, or now: huggingface-cli download {model}")
    if revision and not any(s.startswith(revision) for s in snapshots):
        return Check("warn", "model", f"{model} cached, but not revision {revision}",
                     f"huggingface-cli download {model} --revision {revision}")
    return Check("ok", "model", f"{model} cached ({len(snapshots)} revision(s))")


def check_endpoint(url: str, timeout: float = 3.0) -> Check:
    try:
        base = normalise_endpoint(url)
    except EngineError as exc:
        return Check("FAIL", "endpoint", str(exc))
    try:
        with urllib.request.urlopen(base + "/models", timeout=timeout) as response:
            data = json.load(response)
        names = [m.get("id", "?") for m in data.get("data", [])]
        return Check("ok", "endpoint", f"{base} serves {', '.join(names) or 'no model'}")
    except urllib.error.HTTPError as exc:
        return Check("FAIL", "endpoint", f"{base}/models answered HTTP {exc.code}",
                     "give the API base of an OpenAI-compatible server, ending in /v1")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("FAIL", "endpoint", f"{base} unreachable ({reason})",
                     "start it: vllm serve tencent/HunyuanOCR (flags in docs/hunyuan.md), or fix the host/port")


def run_checks(config: Config, endpoints: list[str]) -> list[Check]:
    hunyuan = {**config.engines.get("hunyuan-transformers", {}), **config.engines.get("hunyuan", {})}
    checks = [check_python(), check_pyav(), check_rapid(), check_tesseract(), check_scripts(), check_gpu(), check_torch(), check_transformers(), check_vllm(),
              check_model(str(hunyuan.get("model", DEFAULT_MODEL)), str(hunyuan.get("revision", "")))]
    configured = config.engines.get("hunyuan-api", {}).get("endpoints", [])
    if isinstance(configured, str):
        configured = [u for u in configured.split(",") if u.strip()]
    checks += [check_endpoint(url) for url in endpoints or configured]
    return checks


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("doctor", help="what engines can run here, and the fix for what is missing")
    parser.add_argument("--config", metavar="FILE", help="TOML settings: the model and endpoints to check")
    parser.add_argument("--endpoint", action="append", default=[], metavar="URL",
                        help="an OpenAI-compatible endpoint to try (repeatable)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one line per check; exit 1 when subflow cannot run or a named endpoint is down."""
    try:
        config = Config.load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = run_checks(config, args.endpoint)
    for check in checks:
        print(check.line())
    usable = [c.name.removeprefix("engine ") for c in checks if c.name.startswith("engine ") and c.status == "ok"]
    if any(c.name == "endpoint" and c.status == "ok" for c in checks) or not any(c.name == "endpoint" for c in checks):
        usable.append("hunyuan-api" + ("" if any(c.name == "endpoint" for c in checks) else " (given a server)"))
    print(f"engines usable here: {', '.join(usable)}")
    return 1 if any(c.status == "FAIL" for c in checks) else 0
