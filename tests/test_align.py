"""Words -> speakers and speaker segments: pure logic, tested on hand-built words and turns."""

from __future__ import annotations

import random

from majlis.align import align_words, join_words, single_speaker
from majlis.types import Segment, Turn, Word


def asr(*segments: list[tuple[str, float, float]]) -> tuple[Segment, ...]:
    """ASR output: each argument is one ASR segment's (word, start, end) list; speaker unknown."""
    out = []
    for i, words in enumerate(segments):
        ws = tuple(Word(w, s, e) for w, s, e in words)
        out.append(Segment(i, "", ws[0].start if ws else 0.0, ws[-1].end if ws else 0.0,
                           " ".join(w for w, _, _ in words), ws))
    return tuple(out)


def spaced(text: str, start: float = 0.0, step: float = 0.4, length: float = 0.3) -> list[tuple[str, float, float]]:
    return [(w, start + i * step, start + i * step + length) for i, w in enumerate(text.split())]


def speakers_of_words(segments) -> list[tuple[str, str]]:
    return [(w.word, w.speaker) for s in segments for w in s.words]


def test_single_speaker_covers_the_recording():
    d = single_speaker(12.5)
    assert d.turns == d.exclusive == (Turn("SPEAKER_00", 0.0, 12.5),)
    assert single_speaker(3, "Tahir").labels == ("Tahir",)


def test_word_takes_the_turn_it_overlaps_most():
    turns = [Turn("A", 0.0, 1.05), Turn("B", 1.05, 3.0)]
    # "mid" spans 0.9-1.3: 0.15 s in A, 0.25 s in B -> B.  "edge" spans 0.8-1.1: 0.25 in A, 0.05 in B -> A.
    segs = align_words(asr([("first", 0.1, 0.5), ("edge", 0.8, 1.1)], [("mid", 0.9, 1.3), ("last", 2.0, 2.4)]),
                       turns, duration=3.0)
    assert speakers_of_words(segs) == [("first", "A"), ("edge", "A"), ("mid", "B"), ("last", "B")]


def test_word_in_a_gap_takes_the_nearest_turn():
    turns = [Turn("A", 0.0, 1.0), Turn("B", 3.0, 4.0), Turn("C", 6.0, 7.0)]
    words = [("before", 1.1, 1.3), ("late", 2.6, 2.9), ("between", 4.2, 4.4), ("closer", 5.5, 5.8),
             ("tail", 7.5, 7.9), ("head", 0.0, 0.0)]
    segs = align_words(asr(words[-1:], words[:-1]), turns, duration=8.0)
    got = dict(speakers_of_words(segs))
    assert got == {"head": "A", "before": "A", "late": "B", "between": "B", "closer": "C", "tail": "C"}


def test_no_turns_at_all_still_gives_every_word_a_speaker():
    segs = align_words(asr(spaced("nobody diarized this")), [], duration=2.0)
    assert [w.speaker for w in segs[0].words] == ["SPEAKER_00"] * 3


def test_asr_segment_straddling_a_speaker_change_is_split_there():
    # One ASR segment, no pause anywhere: the change of speaker alone splits it, each word keeps its speaker.
    words = spaced("so what do you think Bruce well I think it grew", step=0.3, length=0.3)
    turns = [Turn("Tahir", 0.0, 1.8), Turn("Pannier", 1.8, 4.0)]
    segs = align_words(asr(words), turns, duration=4.0)
    assert [(s.id, s.speaker, s.text) for s in segs] == [
        (0, "Tahir", "so what do you think Bruce"),
        (1, "Pannier", "well I think it grew"),
    ]
    for s in segs:
        assert s.start == s.words[0].start and s.end == s.words[-1].end
        assert all(w.speaker == s.speaker for w in s.words)


def test_sentence_end_splits_only_with_a_pause():
    words = [("It", 0.0, 0.2), ("began.", 0.3, 0.6), ("Then", 0.65, 0.9), ("it", 1.0, 1.1), ("grew.", 1.2, 1.5),
             ("Later", 1.9, 2.2), ("on", 2.3, 2.5)]
    segs = align_words(asr(words), [Turn("A", 0, 3)], duration=3.0)
    # 0.05 s after "began." is no pause; 0.4 s after "grew." is.
    assert [s.text for s in segs] == ["It began. Then it grew.", "Later on"]


def test_long_pause_splits_without_punctuation():
    words = spaced("one two three") + spaced("four five", start=2.5)  # gap 0.8 .. 2.5 = 1.7 s
    segs = align_words(asr(words), [Turn("A", 0, 5)], duration=5.0)
    assert [s.text for s in segs] == ["one two three", "four five"]
    short = spaced("one two three") + spaced("four five", start=1.5)  # gap 0.7 s, no sentence end
    assert [s.text for s in align_words(asr(short), [Turn("A", 0, 5)], duration=5.0)] == ["one two three four five"]


def test_asr_boundaries_split_only_where_they_coincide_with_a_pause():
    a, b = spaced("first part here"), spaced("second part", start=1.2)  # 0.1 s after "here" (ends 1.1)
    assert len(align_words(asr(a, b), [Turn("A", 0, 5)], duration=5.0)) == 1
    a, b = spaced("first part here"), spaced("second part", start=1.5)  # 0.4 s pause at the ASR boundary
    assert [s.text for s in align_words(asr(a, b), [Turn("A", 0, 5)], duration=5.0)] == [
        "first part here", "second part"]
    # The same 0.4 s pause inside one ASR segment, without punctuation, does not split.
    assert len(align_words(asr(a + b), [Turn("A", 0, 5)], duration=5.0)) == 1


def test_long_monologue_is_cut_near_30_seconds_at_a_clause_or_sentence_end():
    words = []
    t = 0.0
    for i in range(200):  # 200 words, 0.25 s apart: 50 s of unbroken speech
        w = f"w{i}" + ("," if i == 90 else "")
        words.append((w, t, t + 0.2))
        t += 0.25
    segs = align_words(asr(words), [Turn("A", 0, 60)], duration=60.0)
    assert all(s.end - s.start <= 30.0 for s in segs)
    assert len(segs) == 2
    assert segs[0].words[-1].word == "w90,"  # the comma (at 22.5 s) beats any other place in 15..30 s
    assert [w.word for s in segs for w in s.words] == [w for w, _, _ in words]


def test_punctuation_tokens_glue_and_keep_the_previous_speaker():
    words = [("Hello", 0.0, 0.4), (",", 0.4, 0.4), ("world", 0.5, 0.9), ("!", 1.0, 1.02), ("(", 1.5, 1.5),
             ("aside", 1.5, 1.9), (")", 1.9, 1.9)]
    # The "!" lies in B's turn by time but belongs to A's sentence.
    segs = align_words(asr(words), [Turn("A", 0.0, 0.95), Turn("B", 0.95, 3.0)], duration=3.0)
    assert [(s.speaker, s.text) for s in segs] == [("A", "Hello, world!"), ("B", "(aside)")]
    assert join_words(["a", "(", "b", ")", "c", "."]) == "a (b) c."


def test_empty_words_dropped_times_clamped_and_non_decreasing():
    words = [("", 0.0, 0.1), ("  ", 0.1, 0.2), ("early", -0.5, 0.3), ("back", 0.2, 0.1), ("over", 9.5, 10.7)]
    segs = align_words(asr(words), [Turn("A", 0, 10)], duration=10.0)
    ws = [w for s in segs for w in s.words]
    assert [w.word for w in ws] == ["early", "back", "over"]
    assert ws[0].start == 0.0 and ws[-1].end == 10.0
    for prev, w in zip(ws, ws[1:]):
        assert prev.start <= w.start
    assert all(0.0 <= w.start <= w.end <= 10.0 for w in ws)


def test_no_words_gives_no_segments():
    assert align_words((), [Turn("A", 0, 1)], duration=1.0) == ()
    assert align_words(asr([("", 0.0, 0.1)]), [Turn("A", 0, 1)], duration=1.0) == ()


def test_ids_in_time_order_and_words_kept():
    turns = [Turn("A", 0, 2), Turn("B", 2, 4), Turn("A", 4, 6)]
    words = spaced("a b c d e f g h i j k l m n o", step=0.4)
    segs = align_words(asr(words), turns, duration=6.0)
    assert [s.id for s in segs] == list(range(len(segs)))
    assert [s.speaker for s in segs] == ["A", "B", "A"]
    assert [w.word for s in segs for w in s.words] == [w for w, _, _ in words]


def test_hours_of_words_against_thousands_of_turns_match_a_brute_force():
    rng = random.Random(7)
    turns, t = [], 0.0
    while t < 4 * 3600:  # ~4 h: turns of 0.5..3 s with small gaps, ~10^4 turns
        length = rng.uniform(0.5, 3.0)
        turns.append(Turn(f"S{rng.randrange(5)}", t, t + length))
        t += length + rng.choice([0.0, 0.0, 0.3])
    words, t = [], 0.0
    while t < 4 * 3600 - 1:  # ~10^5 words
        length = rng.uniform(0.1, 0.5)
        words.append((f"w{len(words)}", t, t + length))
        t += length + rng.uniform(0.0, 0.05)
    assert len(turns) > 5000 and len(words) > 40000
    segs = align_words(asr(words), turns, duration=4 * 3600)
    got = [w.speaker for s in segs for w in s.words]
    assert len(got) == len(words)

    def brute(s: float, e: float) -> str:
        best = max(turns, key=lambda x: min(e, x.end) - max(s, x.start))
        if min(e, best.end) - max(s, best.start) > 0:
            return best.speaker
        mid = (s + e) / 2
        return min(turns, key=lambda x: max(x.start - mid, mid - x.end, 0.0)).speaker

    for i in rng.sample(range(len(words)), 300):
        _, s, e = words[i]
        assert got[i] == brute(s, e), words[i]


def test_a_segment_holds_every_word_even_when_a_long_word_ends_last():
    # ASR may give a long word that ends after a shorter one starting later: the segment still holds both
    words = [Word("Weeeell", 1.0, 3.0), Word("so", 1.5, 2.0)]
    (seg,) = align_words([Segment(0, "", 1.0, 3.0, "Weeeell so", tuple(words))], [Turn("A", 0.0, 4.0)],
                         duration=4.0)
    assert (seg.start, seg.end) == (1.0, 3.0)
    assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)


def test_overlap_words_marked_from_the_turns_with_overlaps():
    exclusive = [Turn("A", 0.0, 2.0), Turn("B", 2.0, 4.0)]
    turns = [Turn("A", 0.0, 2.6), Turn("B", 1.8, 4.0)]  # both talk from 1.8 to 2.6
    segs = align_words(asr(spaced("one two three four five six seven eight nine ten", 0.0)), exclusive,
                       duration=4.0, turns=turns)
    marked = [w.word for s in segs for w in s.words if w.overlap]
    # Words at 1.6-1.9 (0.1 s in the overlap), 2.0-2.3 and 2.4-2.7 (0.2 s in it); 1.2-1.5 is outside.
    assert marked == ["five", "six", "seven"]
    assert [w for s in segs for w in s.words][4].to_dict()["overlap"] is True
    assert "overlap" not in [w for s in segs for w in s.words][0].to_dict()


def test_recheck_moves_words_and_punctuation_follows_its_word():
    from dataclasses import replace

    def recheck(words):
        # Stands in for attribution.recheck: "yes" is heard as B with confidence 0.9, the rest kept at 0.7.
        return [replace(w, speaker="B" if w.word == "yes" else w.speaker,
                        speaker_confidence=0.9 if w.word == "yes" else 0.7) for w in words]

    segs = align_words(asr([("so", 0.0, 0.3), ("yes", 0.4, 0.6), (".", 0.6, 0.6), ("then", 0.8, 1.0)]),
                       [Turn("A", 0.0, 2.0)], duration=2.0, recheck=recheck)
    got = [(w.word, w.speaker, w.speaker_confidence) for s in segs for w in s.words]
    assert got == [("so", "A", 0.7), ("yes", "B", 0.9), (".", "B", 0.9), ("then", "A", 0.7)]
    assert [s.speaker for s in segs] == ["A", "B", "A"]


def test_word_round_trips_its_confidence_and_overlap():
    w = Word("hi", 1.0, 1.2, "A", 0.9, 0.734, True)
    assert w.to_dict() == {"word": "hi", "start": 1.0, "end": 1.2, "speaker": "A", "probability": 0.9,
                           "speaker_confidence": 0.734, "overlap": True}
    assert Word.from_dict(w.to_dict()) == w
    assert Word.from_dict({"word": "hi", "start": 1, "end": 2}) == Word("hi", 1.0, 2.0)
