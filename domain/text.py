r"""Rules every piece of text citas accepts must follow, whichever door it comes through.

Two classes of defect are closed here, once, for every field:

- **Patterns match the whole value, in ASCII.** `re.match` with `$` accepts a value with a
  final newline, and `\d` / `\w` accept any Unicode digit or letter (fullwidth U+FF11,
  Arabic-Indic U+0663), so two spellings of one phone were two patients. Every validating pattern
  is compiled by `pattern()` (always `re.ASCII`) and applied by `matches()` (always
  `fullmatch`).
- **Text is valid Unicode scalar values.** JSON's `\ud800` escape decodes to a lone surrogate,
  which Python stores happily and no UTF-8 encoder can write back: accepted once, it broke every
  response that contained it. `check_text()` refuses surrogates and control characters (a
  multi-line field may keep tab and line breaks) before anything is stored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, TypeGuard

from domain.errors import ValidationError

# The longest name (of a doctor or a patient) and free text (notes, a reason) citas keeps.
MAX_NAME: Final = 200
MAX_TEXT: Final = 500
# Single-line text may hold no control character (Cc), surrogate (Cs) or line/paragraph
# separator (Zl, Zp); multi-line text may also hold these three.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})
_MULTILINE_ALLOWED: Final = frozenset("\t\n\r")


def pattern(regex: str) -> re.Pattern[str]:
    r"""A validating pattern: ASCII classes only (`\d` is `[0-9]`)."""
    return re.compile(regex, re.ASCII)


def matches(compiled: re.Pattern[str], value: object) -> TypeGuard[str]:
    """Whether `value` is a string that `compiled` matches from its first to its last character."""
    return isinstance(value, str) and compiled.fullmatch(value) is not None


def is_scalar_text(value: str) -> bool:
    """Whether `value` is made of Unicode scalar values only (no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bad_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character `value` may not hold, as `U+XXXX`, or None if it is clean."""
    if value.isascii() and value.isprintable():
        return None  # the common case, without a look at each character
    for char in value:
        if multiline and char in _MULTILINE_ALLOWED:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """Return `value`, or raise ValidationError if it holds a character text may not hold."""
    found = bad_character(value, multiline=multiline)
    if found is not None:
        # The character's code point, never the value: it may be a patient's name.
        raise ValidationError(
            f"{field} contains a character that is not allowed ({found})",
            field=field,
            character=found,
        )
    return value
