"""Bytes to text for the encodings Chinese news files come in: UTF-8, GB18030/GBK, Big5, UTF-16."""

from __future__ import annotations

import codecs
import re

from qa.errors import BadInputError

# UTF-32 before UTF-16: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Declared legacy charsets are decoded with their supersets, because pages that
# say "gb2312" routinely contain GBK characters and "big5" pages HKSCS ones.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "latin-1": "cp1252"}

_LINE_BREAKS = str.maketrans({"\v": "\n", "\f": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
# Unpaired UTF-16 surrogates: decoded bytes never hold them, but a JSON "\ud800" escape does, and no
# UTF-8 consumer (SQLite, the tokenizer, the JSON response) can encode them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def decode_bytes(data: bytes, source: str, *, declared: str | None = None) -> str:
    """Decode a text file and normalize it (newlines to "\\n", control characters removed).

    `declared` is a charset the file names itself (an HTML `<meta charset>`); it is
    tried after a BOM and before guessing, and ignored when the bytes contradict it.
    """
    return clean_text(decode_raw(data, source, declared=declared))


def decode_raw(data: bytes, source: str, *, declared: str | None = None) -> str:
    """`decode_bytes` without the normalization, for formats whose own syntax
    gives some of those characters a meaning (JSON allows a raw U+2028 in a string)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(codec), source)
            except UnicodeDecodeError:
                reason = f"is not valid {codec.removesuffix('-sig').upper()} text despite its byte-order mark"
                raise BadInputError(reason, source=source) from None
    if b"\x00" in data:
        raise BadInputError("is binary, not text", source=source)
    codec = _declared_codec(declared)
    if codec:
        try:
            return _checked(data.decode(codec), source)
        except UnicodeDecodeError:
            pass
    return _checked(_guess_decode(data, source), source)


def clean_text(text: str, *, line_separators: bool = True) -> str:
    """Normalize newlines and drop control characters other than newline and tab;
    `line_separators` also turns form feeds, U+2028 and the like into newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if line_separators:
        text = text.translate(_LINE_BREAKS)
    return _SURROGATE.sub("", _CONTROL.sub("", text))


def _checked(text: str, source: str) -> str:
    # A decodable file made mostly of control characters is binary data that happens
    # to avoid NUL bytes; its "text" would only pollute the index.
    controls = len(_CONTROL.findall(text))
    mostly_control = controls >= 8 and controls > len(text) // 10
    if "\x00" in text or mostly_control or (controls and not clean_text(text).strip()):
        raise BadInputError("is binary, not text", source=source)
    return text


def _declared_codec(declared: str | None) -> str | None:
    if not declared:
        return None
    try:
        name = codecs.lookup(declared.strip()).name
    except LookupError:
        return None
    name = {"iso8859-1": "latin-1", "big5-tw": "big5"}.get(name, name)
    # Pages that declare UTF-16/32 without a BOM are in practice ASCII-compatible.
    if name.startswith(("utf-16", "utf-32")):
        return None
    return _SUPERSETS.get(name, name)


def _guess_decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    gb = _try_decode(data, "gb18030")
    big5 = _try_decode(data, "big5hkscs")
    # Big5 text nearly always decodes as GB18030 too, into kana, symbols and rare
    # characters; GB text decodes as Big5 far less often. So GB18030 wins unless
    # the Big5 reading is made of more common characters. Measured on snippets of
    # news text: right on every GB and 99% of Big5 snippets of 3 characters, on all
    # of 4 or more; charset-normalizer got 3% of 4-character and 51% of
    # 10-character GB snippets right.
    if gb is not None and (big5 is None or _plausibility(big5) <= _plausibility(gb)):
        return gb
    if big5 is not None:
        return big5
    raise BadInputError("cannot be decoded as UTF-8, GB18030 or Big5", source=source)


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _plausibility(text: str) -> float:
    """Share of the non-ASCII characters that are common in Chinese text."""
    scores = [_commonness(ch) for ch in text if not ch.isascii()]
    return sum(scores) / len(scores) if scores else 1.0


def _commonness(ch: str) -> int:
    code = ord(ch)
    if 0x3000 <= code <= 0x303F or 0xFF01 <= code <= 0xFF5E or 0x2010 <= code <= 0x2027 or ch == "·":
        return 1  # CJK and full-width punctuation, dashes, quotes, ellipsis
    if not 0x4E00 <= code <= 0x9FFF:
        return 0  # kana, Greek, box drawing, private use, extension blocks
    # "Common" = level 1 of GB2312 (3,755 simplified) or of Big5 (5,401 traditional).
    try:
        if 0xB0 <= ch.encode("gb2312")[0] <= 0xD7:
            return 1
    except UnicodeEncodeError:
        pass
    try:
        if 0xA4 <= ch.encode("big5")[0] <= 0xC6:
            return 1
    except UnicodeEncodeError:
        pass
    return 0
