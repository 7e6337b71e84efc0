"""Measurable text attributes, computed from the text alone (pure Python, no downloads).

Four attributes, the measurable analogue of UltraFeedback-P's per-objective scores:

- ``length``: word count.
- ``readability``: Flesch reading ease (Flesch 1948), 206.835 - 1.015 words/sentence - 84.6 syllables/word,
  with a vowel-group syllable heuristic.
- ``formality``: (formal markers - informal markers) per 100 words, from small hand-written lexicons;
  contractions count as informal markers.
- ``sentiment``: (positive words - negative words) per 100 words, from small hand-written lexicons.

Rates per 100 words (not counts) keep formality and sentiment apart from length, so that users who care
about different attributes really disagree.
"""

from __future__ import annotations

import re

ATTRIBUTES = ("length", "readability", "formality", "sentiment")

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")
_CONTRACTION = re.compile(r"[a-z]'(?:t|re|ll|ve|m|d)$|^(?:it|that|here|there|what|let|he|she)'s$")  # not possessives

FORMAL_MARKERS = frozenset(
    """furthermore moreover therefore consequently thus hence additionally accordingly nevertheless
    subsequently regarding whereas notwithstanding indeed advisable recommended ensure require requires
    utilize obtain assist commence individuals appropriate approximately sufficient merit merits
    considerations consideration pertaining respectively shall kindly facilitate regrettably fortunately
    furthermore therein hereby essential adequate""".split()
)
INFORMAL_MARKERS = frozenset(
    """hey yeah yep nope gonna wanna gotta kinda sorta stuff lol cool awesome okay ok dude btw tbh
    folks totally super basically ugh oof yay wow oh um alright anyway ya man guys pal chill""".split()
)
POSITIVE_WORDS = frozenset(
    """good great wonderful excellent love loves enjoy enjoyable happy lovely delightful fantastic best glad
    pleasant rewarding easy fun amazing helpful beautiful successful success perfect nice positive
    encouraging exciting brilliant calm comfortable thrilled fortunately luckily delighted beneficial
    joy pleasure satisfying gratifying cheerful yay awesome""".split()
)
NEGATIVE_WORDS = frozenset(
    """bad terrible awful hate frustrating annoying sadly unfortunately difficult painful pain worst boring
    tedious miserable stressful worry disappointing disappointment useless problem problems fail failure
    regrettably dreadful horrible tiresome unpleasant risky mess exhausting grim poor troublesome
    ugh oof sad costly dull""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def count_syllables(word: str) -> int:
    """Vowel groups, minus a silent final 'e' (but not '-le'); at least one."""
    w = word.lower().split("'")[0]
    n = len(_VOWEL_GROUP.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    return max(1, n)


def count_sentences(text: str) -> int:
    parts = [p for p in _SENTENCE_END.split(text) if _WORD.search(p)]
    return max(1, len(parts))


def flesch_reading_ease(text: str) -> float:
    ws = words(text)
    if not ws:
        return 0.0
    syllables = sum(count_syllables(w) for w in ws)
    return 206.835 - 1.015 * len(ws) / count_sentences(text) - 84.6 * syllables / len(ws)


def _rate(text: str, plus: frozenset, minus: frozenset, minus_contractions: bool = False) -> float:
    ws = [w.lower() for w in words(text)]
    if not ws:
        return 0.0
    n_plus = sum(w in plus for w in ws)
    n_minus = sum(w in minus or (minus_contractions and bool(_CONTRACTION.search(w))) for w in ws)
    return 100.0 * (n_plus - n_minus) / len(ws)


def formality(text: str) -> float:
    return _rate(text, FORMAL_MARKERS, INFORMAL_MARKERS, minus_contractions=True)


def sentiment(text: str) -> float:
    return _rate(text, POSITIVE_WORDS, NEGATIVE_WORDS)


def measure(text: str) -> dict[str, float]:
    """All four attributes of ``text``, rounded to 4 decimals (so shipped banks compare exactly)."""
    return {
        "length": float(len(words(text))),
        "readability": round(flesch_reading_ease(text), 4),
        "formality": round(formality(text), 4),
        "sentiment": round(sentiment(text), 4),
    }
