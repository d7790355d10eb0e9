"""A byte stream anyone can check without keeping a copy: each 8-byte word is its own offset, big-endian.

A lost, repeated or reordered byte breaks the sequence at the first place it happens, which `Checker` reports.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

WORD = 8


def block(offset: int, length: int) -> bytes:
    """`length` bytes of the stream from `offset` (any offset: the words are cut where asked)."""
    first = offset - offset % WORD
    words = (offset + length - first + WORD - 1) // WORD
    data = struct.pack(f">{words}Q", *range(first, first + words * WORD, WORD))
    skip = offset - first
    return data[skip : skip + length]


def blocks(offset: int, count: int, size: int) -> Iterator[bytes]:
    """The stream from `offset` for `count` bytes, in blocks of at most `size`."""
    end = offset + count
    while offset < end:
        length = min(size, end - offset)
        yield block(offset, length)
        offset += length


class Checker:
    """Checks a received stream piece by piece; `error` names the first offset that was wrong."""

    def __init__(self) -> None:
        self.offset = 0
        self.error: str | None = None

    def feed(self, data: bytes) -> bool:
        """Check the next piece; False (and `error` set) from the first wrong byte on."""
        if self.error is not None:
            return False
        expected = block(self.offset, len(data))
        if data != expected:
            at = next(i for i, (a, b) in enumerate(zip(data, expected, strict=True)) if a != b)
            self.error = f"byte {self.offset + at} is wrong (the stream broke there)"
            return False
        self.offset += len(data)
        return True
