"""Bytes a server wrote, made safe to keep: JSON read within a depth, the API key scrubbed.

A hostile or broken server chooses these bytes. Python's parser recurses once per level of
nesting and gives up with a bare ``RecursionError`` near a thousand levels; a document it
does accept can still exhaust the stack later (a ``repr``, a walk of it). So :func:`loads`
refuses anything nested deeper than :data:`MAX_JSON_DEPTH`, as a ``ValueError`` like any
other unreadable body. And a server may quote the key back, written any way JSON or a URL
allows; :class:`KeyScrubber` finds it in the decoded text before any model, error or log
record is made from the body.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "MIN_SCRUBBED_KEY", "KeyScrubber", "loads"]

#: The deepest nesting of arrays and objects read. The API's own documents nest four or five
#: levels (a task's ``output.available_actions.upscale``); past this a body is malformed.
MAX_JSON_DEPTH: Final = 32

_TOO_DEEP: Final = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"

#: The shortest key scrubbed from answers. A real key is a long random string; a shorter one
#: is a test key (``"test"``, ``"emulator"``), too short to tell from ordinary text: scrubbing
#: ``"s"`` or ``"id"`` would rewrite ``status`` and ``job_id`` in every answer.
MIN_SCRUBBED_KEY: Final = 12


def loads(body: bytes) -> Any:
    """``json.loads(body)``; a document nested deeper than :data:`MAX_JSON_DEPTH` is a
    ``ValueError``, as a syntax error is, never a ``RecursionError``."""
    try:
        value = _parse(body)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None
    # Fewer brackets than the limit cannot nest past it: the usual answer costs two counts
    # (a tighter loop than translate's copy).
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _nests_deeper(value):
        raise ValueError(_TOO_DEEP)
    return value


#: A decoder as ``json.loads`` uses (no hooks), for :func:`_parse`.
_DECODER: Final = json.JSONDecoder()
#: What JSON counts as whitespace (``str.strip()`` would also take Unicode spaces).
_JSON_SPACE: Final = " \t\n\r"


def _parse(body: bytes) -> Any:
    """``json.loads(body)``, for the usual answer (a UTF-8 object) without its Python layers.

    A body that starts with ``{`` and no NUL byte after it is UTF-8 to ``json.loads`` too
    (its encoding sniffing looks at NUL bytes and BOMs only); parsed straight from there
    (``raw_decode``) it costs a third less. Anything else (another start, trailing data, an
    error) is left to ``json.loads``, so values and errors are the same as its own.
    """
    if body[:1] == b"{" and body[1:2] != b"\x00":
        text = body.decode("utf-8", "surrogatepass")  # what json.loads decodes it with
        try:
            value, end = _DECODER.raw_decode(text)
        except ValueError:
            pass  # json.loads raises it again, in its own words
        else:
            if end == len(text) or not text[end:].strip(_JSON_SPACE):
                return value
    return json.loads(body)


def _nests_deeper(value: object) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_JSON_DEPTH`, walked level by level (no
    recursion, so any depth json accepted is measured)."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        below: list[object] = []
        for node in level:
            if isinstance(node, dict):
                below.extend(child for child in node.values() if isinstance(child, dict | list))
            elif isinstance(node, list):
                below.extend(child for child in node if isinstance(child, dict | list))
        if not below:
            return False
        level = below
    return True


def _either_case(hex_digits: str) -> str:
    """A regex matching ``hex_digits`` in upper, lower or mixed case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in hex_digits)


def _forms(char: str) -> str:
    """A regex matching ``char`` as decoded text may still spell it.

    The character itself; a ``\\uXXXX`` escape left by a JSON document quoted inside a
    string (a surrogate pair beyond the BMP), and ``\\/`` for ``/``; or its UTF-8 bytes
    percent-encoded, as in a quoted URL. Hex digits in either case.
    """
    code = ord(char)
    units = [code] if code < 0x10000 else [0xD7C0 + (code >> 10), 0xDC00 + (code & 0x3FF)]
    forms = [re.escape(char), "".join(rf"\\u{_either_case(f'{unit:04x}')}" for unit in units)]
    if char == "/":
        forms.append(r"\\/")
    forms.append("".join(f"%{_either_case(f'{byte:02x}')}" for byte in char.encode()))
    return f"(?:{'|'.join(forms)})"


class KeyScrubber:
    """Replaces the API key with ``***`` wherever an answer's decoded text shows it.

    JSON decoding undoes ``\\uXXXX`` (any hex case), ``\\/`` and the other escapes, in any
    mix; what the decoded strings may still hide is matched per character (see
    :func:`_forms`). Not recognised: the key case-changed, cut short, split across strings,
    or encoded otherwise (base64, HTML entities, percent-encoding applied twice). A key
    shorter than :data:`MIN_SCRUBBED_KEY` is left alone.
    """

    __slots__ = ("_enabled", "_escapes", "_key", "_key_bytes", "_pattern")

    def __init__(self, key: str) -> None:
        self._enabled = len(key) >= MIN_SCRUBBED_KEY
        self._key = key
        self._key_bytes = key.encode()
        self._pattern = re.compile("".join(_forms(char) for char in key))
        # The escapes that can hide something: one that decodes to a character of the key,
        # to "%" (a percent-encoding) or to a backslash (a JSON text quoted in a string).
        wanted = {*key, "%", "\\"}
        units = {
            ord(char) if ord(char) < 0x10000 else 0xD7C0 + (ord(char) >> 10) for char in wanted
        }
        forms = [f"u{_either_case(f'{unit:04x}')}" for unit in sorted(units)]
        forms += [re.escape(char) for char in sorted(wanted & set('"\\/'))]
        self._escapes = re.compile(rf"\\(?:{'|'.join(forms)})".encode())

    def __repr__(self) -> str:
        return "<KeyScrubber key='***'>"

    def body(self, body: bytes) -> bytes:
        """``body`` with the key scrubbed from every string (object keys too) it decodes to.

        The body comes back untouched, at the cost of a few byte searches, unless its
        decoded text could show the key: it holds the key as is, a ``%``, an escape that
        decodes to a character of the key, to ``%`` or to a backslash (``\\u0026`` or
        ``\\n`` hide nothing), or it is not UTF-8. Only then is it decoded and walked, and
        written anew if the key was found. A body that is not JSON is never shown by an
        error or a model; the plain key is replaced in it all the same.
        """
        # body.find, not ``in``: bytes' ``in`` first tries its operand as a byte value (an
        # int), raising and clearing a TypeError for every bytes operand; four of those
        # cost more than the searches.
        find = body.find
        if not self._enabled or not (
            find(self._key_bytes) != -1
            or find(b"%") != -1
            or find(b"\x00", 0, 4) != -1  # UTF-16 or UTF-32, which json.loads also reads
            or (find(b"\\") != -1 and self._escapes.search(body))
        ):
            return body
        try:
            value = loads(body)
        except ValueError:
            return body.replace(self._key_bytes, b"***")
        scrubbed, found = self._scrub(value)
        if not found:
            return body
        return json.dumps(scrubbed, separators=(",", ":")).encode()

    def text(self, text: str) -> str:
        """``text`` with the key replaced, however it is spelled (see :func:`_forms`)."""
        return self._pattern.sub("***", text) if self._enabled else text

    def _scrub(self, value: object) -> tuple[object, bool]:
        """``value`` with the key scrubbed from its strings, and whether it was found.

        Recursive: :func:`loads` bounded the depth.
        """
        if isinstance(value, str):
            if self._key not in value and "%" not in value and "\\" not in value:
                return value, False
            scrubbed, count = self._pattern.subn("***", value)
            return scrubbed, count > 0
        if isinstance(value, list):
            items = [self._scrub(item) for item in value]
            return [item for item, _ in items], any(found for _, found in items)
        if isinstance(value, dict):
            found = False
            result: dict[object, object] = {}
            for key, item in value.items():
                new_key, key_found = self._scrub(key)
                result[new_key], item_found = self._scrub(item)
                found = found or key_found or item_found
            return result, found
        return value, False
