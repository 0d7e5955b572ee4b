"""Writing benchmark results: JSON (machine-readable, resumable) and a markdown table.

Every benchmark writes ``benchmarks/results/<name>.json`` and ``<name>.md`` (DESIGN.md §6). Files
are written atomically (temporary file + rename), so a benchmark killed half-way leaves the last
complete snapshot behind and can resume from it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(value):
    """Replaces non-finite floats by None so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: Path, payload: dict) -> None:
    _write_atomic(path, json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n")


NOTES_MARKER = "<!-- notes by hand: write_markdown keeps everything from here on -->"
"""A line in a results markdown file after which notes written by hand follow; a rerun of the
benchmark regenerates the tables above it and keeps the notes."""


def write_markdown(path: Path, text: str) -> None:
    """Writes ``text`` to ``path``, keeping the hand-written notes of the file already there
    (everything from :data:`NOTES_MARKER` on)."""
    try:
        previous = path.read_text()
    except FileNotFoundError:
        previous = ""
    at = previous.find(NOTES_MARKER)
    notes = "\n\n" + previous[at:].rstrip() if at >= 0 else ""
    _write_atomic(path, text.rstrip() + notes + "\n")


def read_json(path: Path) -> dict | None:
    """The previous results at ``path``, or None if there are none (or they are unreadable)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def versions(packages: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def machine_line(result: dict) -> str:
    """The machine and load average of a result (``machine`` and ``load_average`` keys)."""
    m = result["machine"]
    line = f"Machine: {m['cpu']}, {m['cpu_count']} cores, CPU only; {m['date']}"
    if result.get("load_average"):
        load = ", ".join(f"{v:.1f}" for v in result["load_average"])
        line += f"; load average at the end {load} (other jobs shared the machine)"
    return line + "."


def fmt(value, digits: int = 3) -> str:
    """A number for a markdown cell; ``-`` for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def paired(differences: Sequence[float]) -> str:
    """A paired difference for a markdown cell: ``+0.012 ± 0.004`` (mean ± its standard
    error, from the sample standard deviation); ``–`` for fewer than two differences."""
    if len(differences) < 2:
        return "–"
    d = [float(v) for v in differences]
    return f"{statistics.fmean(d):+.3f} ± {statistics.stdev(d) / math.sqrt(len(d)):.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def add_c2st_and_resume_arguments(parser) -> None:
    """``--blas-threads`` (threads of scikit-learn's C2ST classifier) and ``--fresh``, shared by
    the benchmarks that compute C2ST and resume from results on disk."""
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads during C2ST (default 1: on a busy machine more threads make "
        "scikit-learn's MLP several times slower; the result is the same)",
    )
    parser.add_argument("--fresh", action="store_true", help="ignore results already on disk")


def parse_int_list(text: str) -> list[int]:
    """``"1-3,7"`` -> ``[1, 2, 3, 7]`` (for ``--observations``, ``--seeds``)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out
