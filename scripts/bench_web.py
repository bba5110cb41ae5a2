"""How well main-content extractors find the article on the saved pages of
tests/data/web-pages (20 site shapes, each with the article text a reader expects).

    .venv/bin/python scripts/bench.py web                  # our reader and what is installed
    .venv/bin/pip install readability-lxml resiliparse     # to compare those too (not shipped)

Per extractor: word precision and recall against the expected text (multisets of words), F1,
the expected lines found whole, the pages where site furniture leaked in (menus, cookie and
newsletter banners, share bars, related and most-read lists, comments, ads, footers), and the
time per page, and the ratio of our F1 to each's (the other extractors are the peers).
Writes docs/bench/web.json (docs/benchmarks.md shows it).
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

ROOT = bl.ROOT
PAGES = ROOT / "tests" / "data" / "web-pages"
FURNITURE = ["Markets desk", "Houston weather", "We use cookies", "Share on LinkedIn",
             "morning briefing", "Related stories", "Most read", "Refinance your mortgage",
             "reader42", "More from this author", "Filed under", "free articles",
             "All rights reserved", "Current story"]
"""A phrase of each kind of site furniture the pages hold (tests/data/web-pages/make_pages.py)."""

_WORD = re.compile(r"\w+")


def words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def ours(page: str) -> str:
    from assistant.formats.html import read_html

    return read_html(page).text


def rules(page: str) -> str:
    from assistant.formats.html import rule_based_text

    return rule_based_text(page)[0]


def trafilatura_text(page: str) -> str:
    import trafilatura

    return trafilatura.extract(page, include_tables=True) or ""


def trafilatura_recall(page: str) -> str:
    import trafilatura

    return trafilatura.extract(page, include_tables=True, favor_recall=True) or ""


def readability_lxml(page: str) -> str:
    import lxml.html
    from readability import Document

    return str(lxml.html.fromstring(Document(page).summary()).text_content())


def resiliparse_main(page: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return str(extract_plain_text(page, main_content=True))


def justext_paragraphs(page: str) -> str:
    import justext

    return "\n".join(p.text for p in justext.justext(page.encode("utf-8"),
                                                     justext.get_stoplist("English"))
                     if not p.is_boilerplate)


CANDIDATES: dict[str, Callable[[str], str]] = {
    "ours: trafilatura XML + byline (shipped)": ours,
    "trafilatura text, defaults": trafilatura_text,
    "trafilatura text, favor_recall": trafilatura_recall,
    "readability-lxml": readability_lxml,
    "resiliparse main_content": resiliparse_main,
    "jusText": justext_paragraphs,
    "rules before this change (selectolax)": rules,
}


def main(out: Path | None = None) -> None:
    pages = sorted(PAGES.glob("page-*.html"))
    rows = []
    for name, fn in CANDIDATES.items():
        tp = fp = fn_ = 0
        whole = lines = leaks = 0
        seconds = 0.0
        try:
            fn(pages[0].read_text(encoding="utf-8"))  # imports and first-call set-up: not timed
            for path in pages:
                html = path.read_text(encoding="utf-8")
                expected = path.with_name(path.stem + ".expected.txt").read_text("utf-8")
                t = time.perf_counter()
                got = fn(html)
                seconds += time.perf_counter() - t
                e, g = words(expected), words(got)
                common = sum((e & g).values())
                tp += common
                fp += sum(g.values()) - common
                fn_ += sum(e.values()) - common
                flat = " ".join(_WORD.findall(got))
                for line in expected.splitlines():
                    lines += 1
                    whole += " ".join(_WORD.findall(line)) in flat
                leaks += any(f in got for f in FURNITURE)
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name})", file=sys.stderr)
            continue
        p, r = tp / max(1, tp + fp), tp / max(1, tp + fn_)
        f1 = 2 * p * r / max(1e-9, p + r)
        rows.append((name, p, r, f1, whole / max(1, lines), leaks, 1000 * seconds / len(pages)))
    table = bl.Table("extractor", "word precision", "word recall", "F1", "lines found whole",
                     "pages with furniture", "ms a page", "F1 ours / theirs",
                     title=f"main content of {len(pages)} saved pages")
    ours_f1 = rows[0][3] if rows else float("nan")
    for name, p, r, f1, share, leaked, ms in rows:
        table.add(name, f"{p:.3f}", f"{r:.3f}", f"{f1:.3f}", f"{share:.1%}", leaked, f"{ms:.1f}",
                  "" if name == rows[0][0] else bl.times_better(ours_f1, f1))
    bl.save_results("web", {"pages": len(pages), "extractors": [
        {"name": n, "precision": p, "recall": r, "f1": f1, "lines_whole": share,
         "pages_with_furniture": leaked, "ms_per_page": ms}
        for n, p, r, f1, share, leaked, ms in rows]}, [table], out)
