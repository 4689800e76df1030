"""Who may read what the project writes: its owner only, unless the installation shares.

The lake holds every buyer's statements, payments and limits; the output store its scores
and recommendations; the decision store the underwriters' decisions and password hashes.
By default every folder the project creates is made 0700 and every file 0600, whatever the
umask of the shell or scheduler that starts it. The `shared_files` setting
(`SOLVENCY_SHARED_FILES=true`) hands the decision back to the process umask, as for any
program: e.g. a group of operators sharing one lake with `umask 007`.

Two layers, so that neither a forgotten call nor a library writing its own files leaks:

- `use_shared_files(shared)`, called where a run starts (`RunContext.build`, the command
  line), sets the process umask to at least 077 (owner only), so the files that libraries
  create (MLflow's store and artifacts, SQLite's journal, Prefect's results, a report) are
  owner-only too; switched to shared, it gives back the umask the process had before.
- the project's own writers (the lake's atomic writes, its parts and manifest, the output
  store, the decision store's SQLite file) create folders with `make_dirs` and files with
  `create_file`, which set the owner-only modes themselves: library use without a run
  context (a notebook, a test) is owner-only as well.

Folders that already exist keep their mode (the project never loosens or tightens a folder
it did not create); a lake created by an earlier version keeps its modes until
`chmod -R go= <lake>`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, Any

#: Modes of what the project creates when files are not shared (before the umask).
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: The umask bits that owner-only means: nothing for group and others.
PRIVATE_UMASK = 0o077

_lock = threading.Lock()
_state: dict[str, Any] = {"shared": False, "umask_before": None}


def shared_files() -> bool:
    """Whether files follow the process umask (True) or are owner-only (False, default)."""
    return bool(_state["shared"])


def use_shared_files(shared: bool) -> None:
    """Apply the `shared_files` setting to this process (call where a run starts).

    Owner-only: the umask gains 077 (the umask it had is kept, to give back); shared: the
    umask the process had before the first owner-only call comes back.
    """
    with _lock:
        _state["shared"] = bool(shared)
        if shared:
            if _state["umask_before"] is not None:
                os.umask(_state["umask_before"])
                _state["umask_before"] = None
            return
        current = os.umask(PRIVATE_UMASK)  # reading the umask means setting it
        os.umask(current | PRIVATE_UMASK)
        if _state["umask_before"] is None:
            _state["umask_before"] = current


def dir_mode() -> int:
    """The mode new folders are created with (the umask still applies)."""
    return 0o777 if shared_files() else PRIVATE_DIR_MODE


def file_mode() -> int:
    """The mode new files are created with (the umask still applies)."""
    return 0o666 if shared_files() else PRIVATE_FILE_MODE


def make_dirs(path: Path | str) -> Path:
    """Create `path` and its missing parents with `dir_mode()` (like `mkdir -p -m 700`);
    folders that already exist are left as they are. Returns `path`."""
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=dir_mode())
        except FileExistsError:  # another process made it meanwhile (or it is a file:
            if not folder.is_dir():  # then say so, as mkdir -p would)
                raise
    return path


def create_file(path: Path | str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """Open `path` with `flags` (by default: create or truncate, for writing), creating it
    with `file_mode()`; owner-only, a file of ours that already existed is made 0600 too
    (e.g. a lock file of an earlier version). Returns the descriptor (`os.fdopen` it)."""
    descriptor = os.open(path, flags, file_mode())
    try:
        if not shared_files() and os.fstat(descriptor).st_uid == os.geteuid():
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def open_for_writing(path: Path | str, mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """`open(path, mode)` for writing ("wb", "w", "a+", ...), the file created owner-only
    unless files are shared (see `create_file`)."""
    flags = os.O_CREAT | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    if "w" in mode:
        flags |= os.O_TRUNC
    if "a" in mode:
        flags |= os.O_APPEND
    return os.fdopen(create_file(path, flags), mode, **kwargs)
