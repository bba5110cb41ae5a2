"""Redraw the README's screenshot: the real chat, on the bundled briefing, answering.

    python scripts/screenshot.py [OUT.svg]        # default: docs/screenshot.svg

Runs the app headless at 120x40 on ``corpus/`` and ``index/`` (built first if missing or
stale, like the chat does), asks a question and a follow-up, and saves Textual's own SVG
rendering of the screen once both are answered. Nothing is faked: the text is what a user
sees.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from assistant.settings import Settings
from assistant.tui.app import BriefingApp, create_app
from assistant.tui.widgets.question_input import QuestionInput

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["Which Chinese chip vendors does the briefing mention?",
             "Which of them are deploying rack-scale systems?"]


async def _settle(app: BriefingApp) -> None:
    for _ in range(2000):
        await asyncio.sleep(0.05)
        if not app.chat.busy and not any(w.is_running for w in app.workers):
            return
    raise SystemExit("the chat did not settle within 100 s")


async def _shoot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(ROOT)  # the side panel shows the paths as the README's commands give them
        settings = Settings(corpus_dir=Path("corpus"), index_dir=Path("index"))
        app = create_app(settings, history_file=Path(tmp) / "history")
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(app)
            for question in QUESTIONS:
                box = app.query_one(QuestionInput)
                box.focus()
                box.value = question
                await pilot.press("enter")
                await pilot.pause()
                await _settle(app)
            await pilot.pause(0.5)
            app.save_screenshot(filename=out.name, path=str(out.parent))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "docs" / "screenshot.svg")
    args = parser.parse_args()
    asyncio.run(_shoot(args.out.resolve()))


if __name__ == "__main__":
    main()
