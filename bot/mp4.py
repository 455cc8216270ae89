"""An mp4's boxes read straight from the file: is it an mp4, and what its movie header says.

Without PyAV: the download process (bot.download_process) reads a clip's length as it arrives.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


def read_boxes(f: BinaryIO, end: int | None) -> Iterator[tuple[bytes, int, int]]:
    """The mp4 boxes from the file's position up to `end` (None: the end of the file), each
    as (type, where its body starts, its body's length or -1 when it runs to the end)."""
    while end is None or f.tell() + 8 <= end:
        header = f.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return
            size, header_size = struct.unpack(">Q", large)[0], 16
        start = f.tell()
        if size == 0:
            yield kind, start, -1
            return
        if size < header_size:
            return
        yield kind, start, size - header_size
        f.seek(start + size - header_size)


@dataclass(frozen=True)
class Mp4Header:
    """What an mp4's movie header (moov/mvhd) says, as far as the file has arrived."""

    # The movie header is in the file (so far).
    found: bool
    # The length it states; None when it states none (a fragmented file) or is not there.
    duration: float | None


def boxes_after_ftyp(f: BinaryIO) -> Iterator[tuple[bytes, int, int]] | None:
    """The top-level boxes after the file's first, which an mp4's is (ftyp); None when it is
    not (the file is no mp4)."""
    boxes = read_boxes(f, None)
    first = next(boxes, None)
    return boxes if first is not None and first[0] == b"ftyp" else None


def mp4_header(path: Path) -> Mp4Header | None:
    """The movie header read from the file's boxes, also of a file still arriving (boxes past
    its end are not there yet); None when the file is no mp4 (its first box is no ftyp)."""
    with path.open("rb") as f:
        boxes = boxes_after_ftyp(f)
        if boxes is None:
            return None
        for kind, start, length in boxes:
            if kind != b"moov":
                continue
            end = None if length < 0 else start + length
            for inner, body, _ in read_boxes(f, end):
                if inner == b"mvhd":
                    return Mp4Header(found=True, duration=_mvhd_duration(f, body))
            return Mp4Header(found=False, duration=None)
    return Mp4Header(found=False, duration=None)


def _mvhd_duration(f: BinaryIO, body: int) -> float | None:
    """The length in the mvhd box whose body starts at `body` (ISO 14496-12 8.2.2)."""
    f.seek(body)
    version = f.read(1)
    # version and flags, then creation and modification times (4 bytes each, 8 in version 1)
    f.seek(body + (20 if version == b"\x01" else 12))
    fields = f.read(12 if version == b"\x01" else 8)
    if version == b"\x01" and len(fields) == 12:
        timescale, duration = struct.unpack(">IQ", fields)
        unknown = 0xFFFFFFFFFFFFFFFF
    elif version == b"\x00" and len(fields) == 8:
        timescale, duration = struct.unpack(">II", fields)
        unknown = 0xFFFFFFFF
    else:
        return None
    if not timescale or not duration or duration == unknown:
        return None
    return float(duration / timescale)
