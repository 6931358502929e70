"""What a batch reads and where each video's subtitles go.

Inputs are video files, folders (searched recursively for video extensions) and
text files listing paths or URLs, one a line. Every video gets a *key*: its path
relative to the folder or list it came from (``s1/ep01.mkv``), so the outputs
mirror the input tree under ``--out-dir`` (``subs/s1/ep01.srt``), named as
``subflow extract`` names them (the video's name with the format's suffix).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..config import ConfigError

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mkv .mov .avi .webm .ts .m2ts .mts .flv .wmv .mpg .mpeg .vob .3gp .ogv .mxf .y4m".split()
)
LIST_EXTENSIONS = frozenset({".txt", ".list", ".lst"})


@dataclass(frozen=True)
class Item:
    """One video of the batch: what to open (a path or URL) and its key (relative output location)."""

    spec: str
    key: str

    def outputs(self, out_dir: Path, formats: list[str]) -> list[Path]:
        """The subtitle files of this video, one per format, as ``extract`` would name them."""
        base = out_dir / Path(*PurePosixPath(self.key).parts)
        return [base.with_suffix("." + fmt) for fmt in formats]


def collect(inputs: list[str]) -> list[Item]:
    """Every video named by ``inputs``, in order, each once; a missing path or a key used twice
    is a usage error (``ConfigError``). A listed file that is missing or not a video is kept:
    it is recorded as failed with its reason, like any bad video."""
    items: list[Item] = []
    for spec in inputs:
        path = Path(spec)
        if "://" in spec:
            items.append(Item(spec, _url_key(spec)))
        elif path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
            items += [Item(str(p), p.relative_to(path).as_posix()) for p in videos]
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            items += _from_list(path)
        elif path.exists():
            items.append(Item(spec, path.name))
        else:
            raise ConfigError(f"{spec}: no such file or folder")
    return _unique(items)


def _from_list(path: Path) -> list[Item]:
    """Lines of a list file: paths (relative ones from the list's folder) or URLs; '#' starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the list ({exc})") from None
    specs = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    urls = [spec for spec in specs if "://" in spec]
    files = [Path(spec) if Path(spec).is_absolute() else path.parent / spec for spec in specs if "://" not in spec]
    root = Path(os.path.commonpath([str(f.parent.resolve()) for f in files])) if files else None
    items = [Item(spec, _url_key(spec)) for spec in urls]
    for file in files:
        items.append(Item(str(file), file.resolve().relative_to(root).as_posix() if root else file.name))
    return items


def _url_key(url: str) -> str:
    """``s3://bucket/a/b.mp4`` -> ``bucket/a/b.mp4``: host and path, so outputs still mirror the layout."""
    parts = urlsplit(url)
    path = PurePosixPath(parts.netloc, *[p for p in PurePosixPath(parts.path).parts if p not in ("/", "..")])
    return path.as_posix() if path.suffix else path.as_posix() + ".video"


def _unique(items: list[Item]) -> list[Item]:
    seen: dict[str, Item] = {}
    out = []
    for item in items:
        other = seen.get(item.key)
        if other is None:
            seen[item.key] = item
            out.append(item)
        elif os.path.abspath(other.spec) != os.path.abspath(item.spec):
            raise ConfigError(
                f"{other.spec} and {item.spec} would both write {item.key} in the output folder; give their common parent folder instead"
            )
    return out
