"""clamscan's `--move=DIR`, `--copy=DIR` and `--remove` for infected files, with its messages.

`PATH (real path: 'REAL'): moved to 'DEST'` (`copied to`, `Removed.`). The destination is
DIR's real path plus the file's name; when that exists, `.001` to `.999` is appended, as
clamscan does. A file that cannot be moved, copied or removed is an error line on stderr and
counts in the summary's `Not moved:` / `Not removed:`; the scan goes on. Only one action
applies, in clamscan's order: move, then copy, then remove.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zerohour.errors import ConfigError


@dataclass(frozen=True, slots=True)
class InfectedAction:
    verb: str  # "move" | "copy" | "remove"
    target: Path | None = None  # the real path of DIR for move and copy

    @classmethod
    def from_options(cls, move: str | None, copy: str | None,
                     remove: bool) -> InfectedAction | None:
        for verb, where in (("move", move), ("copy", copy)):
            if where is None:
                continue
            real = Path(os.path.realpath(where))
            if not real.is_dir():
                raise ConfigError(f"action_setup: Failed to get realpath of {where}")
            return cls(verb, real)
        return cls("remove") if remove else None

    def _dest(self, real: Path) -> Path:
        assert self.target is not None
        dest = self.target / real.name
        n = 0
        while dest.exists() or dest.is_symlink():
            n += 1
            if n > 999:
                raise FileExistsError(f"no free name for {real.name} in {self.target}")
            dest = self.target / f"{real.name}.{n:03d}"
        return dest

    def apply(self, path: str) -> tuple[str | None, str | None]:
        """Act on one infected file: (the line for stdout, or None; the error, or None)."""
        real = Path(os.path.realpath(path))
        head = f"{path} (real path: '{real}')"
        try:
            if self.verb == "remove":
                real.unlink()
                return f"{head}: Removed.", None
            dest = self._dest(real)
            if self.verb == "copy":
                shutil.copy2(real, dest)
                return f"{head}: copied to '{dest}'", None
            shutil.move(real, dest)
            return f"{head}: moved to '{dest}'", None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return None, f"Can't {self.verb} file '{path}': {reason}"
