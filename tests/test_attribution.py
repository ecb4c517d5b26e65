"""Word-level speaker re-check: which words are heard again on their own, and what a lone speaker gets."""

from __future__ import annotations

import numpy as np
import pytest

from majlis import attribution
from majlis.types import Turn, Word


def test_words_near_a_change_or_in_a_short_turn_are_found():
    words = [Word(f"a{i}", i * 0.5, i * 0.5 + 0.3, "A") for i in range(10)]  # A: 0-4.8 s
    words += [Word("yes", 5.0, 5.3, "B")]  # a one-word reply
    words += [Word(f"c{i}", 6.0 + i * 0.5, 6.3 + i * 0.5, "A") for i in range(10)]
    near, run_len = attribution._turn_info(words, [Turn("A", 0, 4.9), Turn("B", 4.9, 5.5), Turn("A", 5.5, 11)])
    assert run_len[10] == pytest.approx(0.3) and run_len[0] == pytest.approx(4.8)
    own = (near < attribution.NEAR_CHANGE) | (run_len < attribution.SHORT_TURN)
    # The reply and the words whose middles lie within 1.5 s of a change (4.9 s, 5.5 s, 5.65 s).
    assert [w.word for w, o in zip(words, own) if o] == ["a7", "a8", "a9", "yes", "c0", "c1"]


def test_one_speaker_gets_no_confidence():
    words = [Word("hi", 0.1, 0.4, "A"), Word("there", 0.5, 0.9, "A")]
    assert attribution.recheck(np.zeros(16000, np.float32), words, [Turn("A", 0, 1)]) == words
    assert attribution.recheck(np.zeros(16000, np.float32), [], []) == []


def _words(spec):
    """(speaker, start, end) -> Words."""
    return [Word(f"w{i}", a, b, s) for i, (s, a, b) in enumerate(spec)]


def test_a_moved_word_inside_one_speakers_continuous_speech_is_put_back():
    words = _words([("A", 0.0, 0.3), ("A", 0.32, 0.6), ("A", 0.62, 0.9), ("A", 0.95, 1.2)])
    said = ["A", "B", "A", "A"]
    attribution._keep_islands_out(words, said)
    assert said == ["A", "A", "A", "A"]


def test_a_move_with_a_pause_beside_it_or_at_a_change_stays():
    # A pause before the word: a reply can sit there.
    words = _words([("A", 0.0, 0.3), ("A", 0.8, 1.0), ("A", 1.02, 1.3)])
    said = ["A", "B", "A"]
    attribution._keep_islands_out(words, said)
    assert said == ["A", "B", "A"]
    # The word next to a change of speaker moves with the change: no island.
    words = _words([("A", 0.0, 0.3), ("A", 0.32, 0.6), ("B", 0.62, 0.9)])
    said = ["A", "B", "B"]
    attribution._keep_islands_out(words, said)
    assert said == ["A", "B", "B"]
    # A long stretch moved at once is a turn the diarizer missed, not an island.
    words = _words([("A", 0.0, 0.3)] + [("A", 0.32 + 0.3 * k, 0.6 + 0.3 * k) for k in range(4)] + [("A", 1.62, 1.9)])
    said = ["A", "B", "B", "B", "B", "A"]
    attribution._keep_islands_out(words, said)
    assert said == ["A", "B", "B", "B", "B", "A"]


def _sentence(text, speakers):
    return [Word(w, i * 0.4, i * 0.4 + 0.3, s) for i, (w, s) in enumerate(zip(text.split(), speakers))]


@pytest.mark.parametrize("speakers, moved", [
    # The demo: whisper gave Tahir's first "we" the end of Mudaqiq's sentence.
    ("AAAAAB", "AAAABB"),
    # Mudaqiq's last word "captured.", said over Tolibov's first, given to Tolibov.
    ("AAABBB", "AAAABB"),
])
def test_a_change_of_speaker_a_word_from_a_sentence_end_moves_to_it(speakers, moved):
    words = _sentence("the north of Afghanistan. we have", speakers)
    said = [w.speaker for w in words]
    attribution._changes_at_sentence_ends(words, said)
    assert "".join(said) == moved


@pytest.mark.parametrize("text, speakers", [
    ("yes I think so and", "ABBBB"),  # no sentence end near: whisper wrote the two turns as one sentence
    ("I see. so what now", "AABBB"),  # the change is at the sentence end already
    ("he said no. we go. now", "AAAABB"),  # a sentence end on each side, as near: which one is not known
    ("one. two three four five", "ABBAA"),  # moving it would leave nothing of B's turn
    ("one. two. three four five", "ABABB"),  # the nearest end lies beyond another change
])
def test_changes_that_stay_where_they_are(text, speakers):
    words = _sentence(text, speakers)
    said = [w.speaker for w in words]
    attribution._changes_at_sentence_ends(words, said)
    assert "".join(said) == speakers


def test_a_word_goes_to_whoever_the_model_clearly_heard_alone_over_half_of_it():
    words = [Word("a", 0.0, 0.4), Word("b", 0.5, 0.9), Word("c", 1.0, 1.2), Word("d", 2.0, 2.2)]
    alone = (Turn("A", 0.0, 0.15), Turn("B", 0.15, 0.4), Turn("A", 0.6, 0.8), Turn("B", 1.1, 1.15))
    # a: B holds 0.25 of 0.4; b: A holds half; c: B only a quarter; d: nothing heard alone.
    assert attribution._heard_alone(words, alone) == ["B", "A", None, None]
    assert attribution._heard_alone(words, ()) == [None] * 4


def test_diarization_keeps_where_one_voice_was_heard_alone():
    from majlis.diarize import Diarization

    d = Diarization((Turn("A", 0.0, 1.0),), (Turn("A", 0.0, 1.0),), (Turn("A", 0.2, 0.8),))
    assert Diarization.from_dict(d.to_dict()) == d
    plain = Diarization(d.turns, d.exclusive)
    assert "alone" not in plain.to_dict() and Diarization.from_dict(plain.to_dict()) == plain
