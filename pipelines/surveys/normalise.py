"""How survey text is compared: question headers, answer labels and register names.

Survey tools decorate text (curly quotes, non-breaking spaces, trailing full stops, a BOM,
HTML-ish spacing), and people retype labels. Comparing normalised forms lets a label or a
question match whatever the tool did to it, while the stored value stays canonical.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})
_QUOTES_PATTERN = "[\u2018\u2019\u02bc]"
_EMAIL = r"[^\s@]+@[^\s@]+\.[^\s@]+"
# Longest answer text kept in a quarantine record; longer text is not an answer label.
MAX_LABEL_CHARS = 40


def text_key(text: str) -> str:
    """Question and header text as lower-case words: punctuation, case and spacing ignored."""
    text = unicodedata.normalize("NFKC", text.replace("\ufeff", "")).translate(_QUOTES)
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def label_key(label: str) -> str:
    """An answer label as compared: case and whitespace ignored, punctuation kept."""
    text = unicodedata.normalize("NFKC", label).translate(_QUOTES)
    return re.sub(r"\s+", " ", text.lower()).strip()


def label_key_expr(column: str) -> pl.Expr:
    """:func:`label_key` as a polars expression (null stays null)."""
    return (
        pl.col(column)
        .str.normalize("NFKC")
        .str.replace_all(_QUOTES_PATTERN, "'")
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def safe_label_expr(column: str) -> pl.Expr:
    """A cell fit to keep in a quarantine record or a reason: short labels as given; anything
    long (free text typed into a closed question) or holding an e-mail address withheld."""
    text = pl.col(column).str.strip_chars()
    return (
        pl.when(text.is_null())
        .then(None)
        .when(text.str.contains(_EMAIL) | (text.str.len_chars() > MAX_LABEL_CHARS))
        .then(pl.format("[withheld: {} characters]", text.str.len_chars()))
        .otherwise(text)
    )


def safe_organisation_expr(column: str) -> pl.Expr:
    """An organisation answer fit to keep: names are longer than labels, so the limit is
    wider, but e-mail addresses and long typed text are still withheld."""
    text = pl.col(column).str.strip_chars()
    return (
        pl.when(text.str.contains(_EMAIL) | (text.str.len_chars() > 2 * MAX_LABEL_CHARS + 20))
        .then(pl.format("[withheld: {} characters]", text.str.len_chars()))
        .otherwise(text)
    )
