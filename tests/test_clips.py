"""cut_clip on real recordings with the real ffmpeg: the right stretch, the right format, whole-or-nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from majlis.audio import SAMPLE_RATE, decode, ffmpeg_binary, probe
from majlis.export.clips import cut_clip
from majlis.errors import AudioError, UsageError


@pytest.fixture(scope="module")
def beep(tmp_path_factory) -> Path:
    """6 s stereo 44.1 kHz mp3: silence, a 1 kHz beep from 2.0 to 3.0 s, silence."""
    out = tmp_path_factory.mktemp("clips") / "beep.mp3"
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=f=1000:d=1,adelay=2000,apad=whole_dur=6", "-ar", "44100", "-ac", "2", str(out)], check=True)
    return out


@pytest.mark.parametrize("ext,codec", [("wav", "pcm_s16le"), ("mp3", "mp3"), ("flac", "flac"), ("ogg", "vorbis"),
                                       ("m4a", "aac")])
def test_formats_follow_the_extension(beep, tmp_path, ext, codec):
    out = cut_clip(beep, 2.0, 3.0, tmp_path / f"clip.{ext}")
    assert out == tmp_path / f"clip.{ext}" and probe(out).codec == codec
    x = decode(out)
    assert len(x) / SAMPLE_RATE == pytest.approx(1.5, abs=0.06)
    loud = np.abs(x) > 0.02
    onset = np.argmax(loud) / SAMPLE_RATE  # the beep starts one pad (0.25 s) into the clip
    assert onset == pytest.approx(0.25, abs=0.06)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"clip.{ext}"]


def test_pad_and_clamping(beep, tmp_path):
    assert len(decode(cut_clip(beep, 2.0, 3.0, tmp_path / "a.wav", pad=0))) / SAMPLE_RATE == pytest.approx(1.0, abs=0.01)
    assert len(decode(cut_clip(beep, 0.1, 1.0, tmp_path / "b.wav"))) / SAMPLE_RATE == pytest.approx(1.25, abs=0.01)
    d = probe(beep).duration
    assert len(decode(cut_clip(beep, d - 0.5, d + 3, tmp_path / "c.wav"))) / SAMPLE_RATE == pytest.approx(0.75, abs=0.05)  # mp3 header vs samples


def test_errors_leave_nothing_behind(beep, tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        cut_clip(tmp_path / "none.mp3", 1, 2, tmp_path / "x.mp3")
    with pytest.raises(UsageError, match="unknown clip format"):
        cut_clip(beep, 1, 2, tmp_path / "x.doc")
    with pytest.raises(UsageError, match="start < end"):
        cut_clip(beep, 2, 1, tmp_path / "x.mp3")
    with pytest.raises(UsageError, match="past the end"):
        cut_clip(beep, 60, 61, tmp_path / "x.mp3")
    assert list(tmp_path.iterdir()) == []


def test_replaces_an_existing_clip_whole(beep, tmp_path):
    out = tmp_path / "clip.wav"
    out.write_bytes(b"old")
    cut_clip(beep, 2.0, 3.0, out)
    assert len(decode(out)) / SAMPLE_RATE == pytest.approx(1.5, abs=0.01)
