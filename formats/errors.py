"""Errors the file writers raise; the service layer turns them into answers a user can act on."""
from __future__ import annotations

import os
import resource
from pathlib import Path


class FormatError(ValueError):
    """The data cannot be written in this format as asked (e.g. more rows than an XLSX sheet holds)."""


#: What GDAL and SQLite say when a write finds the disk, a quota or a file size limit full.
NO_SPACE_MESSAGES = ("No space left on device", "database or disk is full", "File too large", "Disk quota exceeded")


class OutOfSpace(Exception):
    """The file could not be written: the disk, the quota or the file size limit is full."""


#: Less room than this (bytes) where a write failed means the failure was for want of room.
NO_ROOM_BYTES = 4 * 1024 * 1024


def room_left(path: Path) -> int:
    """Bytes a file in ``path``'s folder may still grow by: the disk's (or quota's) free space, and the
    process's file size limit (RLIMIT_FSIZE) less the largest file there."""
    folder = path.parent
    stats = os.statvfs(folder)
    room = stats.f_bavail * stats.f_frsize
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        largest = max((p.stat().st_size for p in folder.iterdir() if p.is_file()), default=0)
        room = min(room, limit - largest)
    return max(room, 0)


def is_out_of_space(exc: BaseException, path: Path) -> bool:
    """Whether a writer's failure writing ``path`` came from want of room.

    GDAL and SQLite often report it only as a failed write or commit, so the
    message is read and the room left is measured (:func:`room_left`).
    """
    if any(m in str(exc) for m in NO_SPACE_MESSAGES):
        return True
    try:
        return room_left(path) < NO_ROOM_BYTES
    except OSError:
        return False
