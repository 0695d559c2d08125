"""A folder standing in for the processed bucket (transform.ProcessedStore), so the benchmark and
the tests of a file's transform measure and check the step itself, not an S3 stand-in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def upload(self, local_path: Path, key: str) -> None:
        shutil.copyfile(local_path, self._target(key))

    def copy(self, source_key: str, key: str) -> None:
        # S3 copies within a bucket on its own side, at no cost to the worker; a hard
        # link is the folder's equivalent (objects are never changed in place).
        target = self._target(key)
        try:
            os.link(self.root / source_key, target)
        except OSError:  # a file system without hard links
            shutil.copyfile(self.root / source_key, target)

    def _target(self, key: str) -> Path:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def remove_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)
