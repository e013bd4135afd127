"""Writes a benchmark's table into a marked section of a Markdown file (``docs/results.md``).

Each script owns one section, delimited by ``<!-- <name>:start -->`` and ``<!-- <name>:end -->``; a
rerun replaces its own section and leaves the others alone, so several scripts share one page.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results.md"


def machine(threads: bool = True) -> str:
    """A one-line description of the machine a table was measured on (``threads``: with this process's
    torch threads, which a table built from logged rows leaves out: the runs that made them said theirs)."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    count = f"{torch.get_num_threads()} torch threads, " if threads else ""
    return (f"{platform.processor() or platform.machine()}, {count}{device}; "
            f"Python {sys.version.split()[0]}, torch {torch.__version__}")


def write_section(name: str, markdown: str, path: Path = RESULTS) -> Path:
    """Replaces (or appends) the section ``name`` of ``path`` with ``markdown``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Results\n\nEvery table below is written by the script it names.\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def publish(section: str, markdown: str, args, rows: list | None = None) -> None:
    """Prints a benchmark's table and writes it into ``section`` of ``args.out`` (default docs/results.md),
    except with ``args.quick`` and no ``args.out`` (quick numbers never replace the real table); with
    ``args.json`` (when the script has it) also writes ``rows`` there as JSON."""
    print(markdown)
    if args.out is not None or not getattr(args, "quick", False):
        print(f"written to {write_section(section, markdown, args.out or RESULTS)}", file=sys.stderr)
    if getattr(args, "json", None) and rows is not None:
        args.json.write_text(json.dumps(rows, indent=2))


def read_rows(logs: list[Path], key: str) -> list[dict]:
    """The JSON rows benchmark runs printed to their logs (stderr): every line starting ``{"<key>"``, in order."""
    prefix = '{"' + key + '"'
    return [json.loads(line) for log in logs for line in Path(log).read_text().splitlines() if line.startswith(prefix)]
