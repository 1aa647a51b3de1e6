"""Content-Type for served files: from the name's extension, else from the first bytes.

Hand-written: the few signatures a marketplace serves (images, PDF, HTML, text) are a dozen
lines, and the maintained sniffing libraries wrap libmagic (a C dependency) for far more.
"""

import mimetypes
from typing import Final

#: Bytes looked at when the name says nothing (WHATWG MIME sniffing reads 512).
SNIFF_BYTES: Final = 512

_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
_HTML_STARTS: Final = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<p>")


def type_from_name(name: str | None) -> str | None:
    if not name:
        return None
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return _with_charset(guessed) if guessed else None


def sniff(head: bytes) -> str:
    """The type of content that has no telling name, from its first SNIFF_BYTES."""
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip().lower()
    if text.startswith(_HTML_STARTS):
        return "text/html; charset=utf-8"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if _looks_like_text(head):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _with_charset(kind: str) -> str:
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


def _looks_like_text(head: bytes) -> bool:
    if any(byte < 0x09 or 0x0E <= byte < 0x20 for byte in head if byte != 0x1B):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3
    return True
