"""Which text encoding a CSV or DBF file is in, decided line by line.

Agencies' files come as UTF-8 or GBK (GB18030 for rare characters). A file
that was pasted together from both is the dangerous case: UTF-8 bytes almost
always decode as (wrong) GBK, so decoding the whole file as GBK "works" and
stores ``甯傛皯鏈嶅姟涓績`` for ``市民服务中心``. :class:`EncodingScan` therefore
looks at every line that is not plain ASCII: a line that is valid UTF-8 and
holds a character of three or more bytes (every Chinese character) counts as
UTF-8 only, whatever else it would decode as. The encodings every line allows
narrow as the scan goes; when a line allows none of those left, the file is
refused, naming that line, what it is, and where the file's encoding was
first seen.
"""
from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from etl.errors import ETLError

#: Text encodings tried for CSV and DBF, in order of preference.
TRIED_ENCODINGS = ("utf-8", "gbk", "gb18030")

#: A UTF-8 sequence of three or four bytes: CJK text in UTF-8 is made of these.
_WIDE_UTF8 = re.compile(rb"[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_LABEL = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}


class UnknownEncoding(ETLError):
    """A line decodes in none of the encodings tried (the caller may try a detected one)."""


def line_encodings(line: bytes, encodings: tuple[str, ...] = TRIED_ENCODINGS) -> tuple[str, ...]:
    """The encodings among ``encodings`` that ``line`` decodes in, strictly.

    A line that is valid UTF-8 with a character of three or more bytes is
    UTF-8 only: that it also decodes as GBK is an accident of the byte ranges.
    """
    fits = []
    for encoding in encodings:
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            continue
        fits.append(encoding)
    if "utf-8" in fits and _WIDE_UTF8.search(line):
        return ("utf-8",)
    return tuple(fits)


def describe(encodings: tuple[str, ...]) -> str:
    """``UTF-8``, ``GBK``, ``UTF-8 or GBK``...: what a set of fitting encodings means to a person."""
    if not encodings:
        return "none of " + ", ".join(_LABEL.values())
    if "gbk" in encodings and "gb18030" in encodings:
        encodings = tuple(e for e in encodings if e != "gb18030")
    return " or ".join(_LABEL.get(e, e.upper()) for e in encodings)


class EncodingScan:
    """Narrow a file's possible encodings piece by piece; refuse a file that mixes two.

    Parameters
    ----------
    what : str
        The file's name, for messages.
    candidates : tuple of str
        Encodings allowed, in order of preference.
    origin : str, optional
        Where the encoding is already known from (``"its UTF-8 byte-order mark"``).
    """

    def __init__(self, what: str, candidates: tuple[str, ...] = TRIED_ENCODINGS, origin: str | None = None):
        self.what = what
        self.possible = tuple(candidates)
        self.origin = origin

    @property
    def encoding(self) -> str:
        """The preferred encoding that fits every piece seen so far."""
        return self.possible[0]

    def feed(self, block: bytes, first_line: int) -> None:
        """Check whole lines ``first_line``, ``first_line + 1``... (``block`` split on ``\\n``)."""
        if block.isascii() or self._whole_block_utf8(block, first_line):
            return
        for number, line in enumerate(block.split(b"\n"), start=first_line):
            if not line.isascii():
                self.check(line, f"line {number:,}")

    def check(self, piece: bytes, where: str) -> None:
        """Check one line or value; ``where`` names it (``"line 7"``, ``"record 3"``).

        Raises
        ------
        UnknownEncoding
            When ``piece`` decodes in none of the candidates.
        ETLError
            When it decodes, but not in any encoding the pieces before it allow.
        """
        fits = line_encodings(piece, self.possible + tuple(e for e in TRIED_ENCODINGS if e not in self.possible))
        left = tuple(e for e in self.possible if e in fits)
        if not fits:
            raise UnknownEncoding(f"{self.what}: {where} is not {describe(self.possible)} text "
                                  f"({_first_bad(piece, self.possible)})")
        if not left:
            raise ETLError(f"{self.what} mixes text encodings: {where} is {describe(fits)}, but the file is "
                           f"{describe(self.possible)} (from {self.origin}); nothing was loaded. Save the whole "
                           "file in one encoding (UTF-8 is best) and load it again")
        if self.origin is None:
            self.origin = where
        self.possible = left

    def _whole_block_utf8(self, block: bytes, first_line: int) -> bool:
        """Fast path: a block that is valid UTF-8 with CJK text, in a file that may be UTF-8."""
        if "utf-8" not in self.possible:
            return False
        found = _WIDE_UTF8.search(block)
        if found is None:
            return False
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if self.origin is None:
            before = block.count(b"\n", 0, found.start())
            self.origin = f"line {first_line + before:,}"
        self.possible = ("utf-8",)
        return True


def _first_bad(piece: bytes, encodings: tuple[str, ...]) -> str:
    """Where decoding ``piece`` fails, for a person: ``byte 0xFF at byte 12 does not decode``."""
    try:
        piece.decode(encodings[0])
    except UnicodeDecodeError as exc:
        return f"byte 0x{piece[exc.start]:02X} at byte {exc.start + 1} does not decode"
    return "it does not decode"


def guess_encoding(sample: bytes) -> str | None:
    """charset-normalizer's guess for text in none of :data:`TRIED_ENCODINGS` (e.g. Big5), or None."""
    best = from_bytes(sample).best()
    if best is None or best.encoding is None:
        return None
    return codecs.lookup(best.encoding).name


def decode_text(data: bytes, what: str = "the file") -> tuple[str, str]:
    """Decode bytes strictly; return ``(text, encoding)``.

    UTF-8 (with or without BOM), UTF-16 with BOM, GBK, GB18030, then
    charset-normalizer's guess, each checked line by line with
    :class:`EncodingScan`: a file mixing two encodings is refused, naming the
    first line that does not fit. Never substitutes characters.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ETLError(f"{what} starts with a UTF-16 byte-order mark but is not UTF-16 "
                           f"(bad bytes at {exc.start})") from None
    if data.startswith(codecs.BOM_UTF8):
        scan = EncodingScan(what, ("utf-8",), origin="its UTF-8 byte-order mark")
        scan.feed(data[len(codecs.BOM_UTF8):], 1)
        return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
    scan = EncodingScan(what)
    try:
        scan.feed(data, 1)
    except UnknownEncoding:
        guessed = guess_encoding(data[:1 << 20])
        if scan.origin is not None or guessed is None or guessed in TRIED_ENCODINGS:
            raise
        scan = EncodingScan(what, (guessed,), origin="the detected encoding")
        scan.feed(data, 1)
    return data.decode(scan.encoding), scan.encoding
