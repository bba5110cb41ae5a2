"""Write Python's own language-reference topics as a plain-text evaluation corpus.

    python scripts/make_pydoc_corpus.py [OUT_DIR]        # default: build/pydoc_corpus

The topics are those ``help()`` shows, shipped with Python as ``pydoc_data.topics``.
Each becomes ``OUT_DIR/<topic>.txt`` (UTF-8): a title line (the topic's own heading, else
its name made readable), a blank line, then the topic text verbatim. Deterministic and
idempotent: a file is only written when its content changes; nothing else is touched.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from pydoc_data.topics import topics

_RULE = re.compile(r"^([*=\-~^#])\1+$")


def file_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "topic"


def title(name: str, text: str) -> str:
    lines = text.strip().splitlines()
    if len(lines) > 1 and lines[0].strip() and _RULE.match(lines[1].strip()):
        return lines[0].strip()
    return name.replace("-", " ").replace("_", " ").strip().capitalize()


def render(name: str, text: str) -> str:
    return f"{title(name, text)}\n\n{text.strip()}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("build/pydoc_corpus"),
                        help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name in sorted(topics):
        path = out / f"{file_stem(name)}.txt"
        data = render(name, topics[name]).encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            written += 1
    print(f"{len(topics)} topics in {out}, {written} written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
