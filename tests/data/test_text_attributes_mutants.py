"""Text attributes' finer rules, each pinned by hand: what test_synthetic.py's by-hand checks leave open."""

from __future__ import annotations

from pluralign.data.text_attributes import count_sentences, count_syllables, formality, measure


def test_a_final_ee_is_not_a_silent_e() -> None:
    """"agree": vowel groups a, ee = 2 syllables; the final 'e' belongs to 'ee', so nothing is taken off."""
    assert count_syllables("agree") == 2


def test_a_sentence_needs_a_word() -> None:
    """"Hello. :)" splits at "." into "Hello" and " :)"; the second holds no word, so 1 sentence, not 2."""
    assert count_sentences("Hello. :)") == 1


def test_i_m_is_an_informal_contraction() -> None:
    """"I'm here.": 2 words, "I'm" a contraction (informal), no formal marker: 100 * (0 - 1) / 2 = -50."""
    assert formality("I'm here.") == -50.0


def test_a_text_without_words_measures_zero() -> None:
    """A response that is only "42 :)" (a number and an emoticon, no word): every attribute 0, not a division by 0."""
    assert measure("42 :)") == {"length": 0.0, "readability": 0.0, "formality": 0.0, "sentiment": 0.0}
