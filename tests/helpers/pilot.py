"""Driving the chat under Pilot: shared by the functional and the snapshot tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from textual.pilot import Pilot

from assistant.tui.app import BriefingApp
from assistant.tui.widgets.question_input import QuestionInput


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


async def settle(pilot: Pilot[None], timeout: float = 180.0) -> None:
    """Wait until the app has nothing left to do: loading, building, answering."""
    app = pilot.app
    assert isinstance(app, BriefingApp)
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while app.chat.busy or any(w.is_running for w in app.workers):
        assert time.monotonic() < deadline, "the chat did not settle"
        await app.workers.wait_for_complete()
        await pilot.pause()
    await pilot.pause()


async def ask(pilot: Pilot[None], question: str, wait: bool = True) -> None:
    box = pilot.app.query_one(QuestionInput)
    box.focus()
    box.value = question
    await pilot.press("enter")
    if wait:
        await settle(pilot)


def spy_notes(app: BriefingApp) -> list[str]:
    """Every notification's message, as the user saw it."""
    said: list[str] = []
    notify = app.notify

    def spy(message: str, *args: object, **kwargs: object) -> None:
        said.append(message)
        notify(message, *args, **kwargs)  # type: ignore[arg-type]

    app.notify = spy  # type: ignore[method-assign]
    return said
