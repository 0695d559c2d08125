"""A folder standing in for the processed bucket (transform.ProcessedStore), so the benchmark and
the tests of a file's transform measure and check the step itself, not an S3 stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def upload(self, local_path: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, target)

    def remove_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)
