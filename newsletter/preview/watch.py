"""Watching the newsletter folder: every relevant save bumps the workspace's generation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

from newsletter.preview.workspace import Workspace

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif"})


class Watcher:
    """A background thread that tells the workspace when its files change.

    Watches the whole folder (so ``templates/`` and image folders created later are
    seen) and lets through the files a preview depends on: ``newsletter.yaml``, anything
    under ``issues/`` and ``templates/``, and images. A false alarm only costs the page a
    refresh that finds nothing new.
    """

    def __init__(
        self, workspace: Workspace, on_change: Callable[[list[Path]], None] | None = None
    ) -> None:
        self.workspace = workspace
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview-watcher", daemon=True)
        self._ignored = watchfiles.DefaultFilter()
        self._roots = [workspace.root]
        pinned = workspace.pinned_issue
        if pinned is not None and not pinned.is_relative_to(workspace.root):
            self._roots.append(pinned.parent)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def relevant(self, change: watchfiles.Change, name: str) -> bool:
        if not self._ignored(change, name):
            return False
        path = Path(name)
        workspace = self.workspace
        if path.is_relative_to(workspace.root / "build"):
            return False  # what the build and the image pipeline write, not sources
        return (
            path == workspace.config_path
            or path == workspace.pinned_issue
            or path.is_relative_to(workspace.issues_dir)
            or path.is_relative_to(workspace.templates_dir)
            or path.suffix.lower() in IMAGE_SUFFIXES
        )

    def _run(self) -> None:
        for changes in watchfiles.watch(
            *self._roots,
            watch_filter=self.relevant,
            stop_event=self._stop,
            raise_interrupt=False,
        ):
            self.workspace.changes.notify()
            if self.on_change is not None:
                self.on_change(sorted({Path(name) for _, name in changes}))
