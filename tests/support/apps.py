"""The app a test's Lambda handlers run on: the test builds its own and puts it in a slot.

A handler made with `module.make_handler(slot)` asks the slot for its app on each call, so a
test can swap the app (a rebuilt one, one with a failing adapter) under the same handler.
"""

from __future__ import annotations

from entrypoints.bootstrap import App


class AppSlot:
    """Holds the app of the running test; calling it returns that app."""

    def __init__(self) -> None:
        self.app: App | None = None

    def __call__(self) -> App:
        if self.app is None:
            raise AssertionError("no app in the slot: the test must build one first")
        return self.app
