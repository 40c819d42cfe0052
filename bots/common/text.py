"""Splitting long content for platforms with message limits."""

from __future__ import annotations


def chunk_lines(lines: list[str] | tuple[str, ...], limit: int) -> list[str]:
    """Join lines into pages of at most ``limit`` characters, cutting an over-long line itself."""
    pages: list[str] = []
    current = ""
    for line in lines:
        while len(line) > limit:
            if current:
                pages.append(current)
                current = ""
            pages.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pages.append(current)
            current = line
        else:
            current = candidate
    if current:
        pages.append(current)
    return pages
