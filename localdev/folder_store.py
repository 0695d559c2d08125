"""A folder standing in for the processed bucket (transform.ProcessedStore), so the benchmark and
the tests of a file's transform measure and check the step itself, not an S3 stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def upload(self, local_path: Path, key: str) -> None:
        self._place(local_path, key)

    def copy(self, source_key: str, key: str) -> None:
        self._place(self.root / source_key, key)

    def _place(self, path: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def remove_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)
