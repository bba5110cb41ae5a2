"""A call running on a daemon thread of its own, its result or error taken later.

Used where a slow call needs nothing the caller is about to do: the lexical search while the
question is embedded (``qa.candidates``), and the model's loading while the answer stages
import (``assistant.preload``). Daemon threads, so an interrupted process never waits for one
at exit, as a thread pool's workers made the interpreter do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, fn: Callable[..., T], *args: object, name: str = "background") -> None:
        self._fn = fn
        self._args = args
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc
        finally:
            self._done.set()

    def wait(self) -> None:
        self._done.wait()

    def settle(self) -> None:
        """Wait even through Ctrl+C, raised once the call has ended: for a call the process
        must not exit during (onnxruntime's C++ runtime aborts a process that exits while it
        is loading a model on another thread, instead of letting it exit with its code)."""
        interrupted = False
        while not self._done.is_set():
            try:
                self._done.wait()
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt

    def result(self) -> T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
