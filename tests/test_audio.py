"""Decoding real files of every common kind, and a one-line AudioError for every bad input, with real
files made in tmp dirs by ffmpeg (nothing mocked)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from majlis import audio
from majlis.audio import SAMPLE_RATE, decode, ffmpeg_binary, is_audio_path, probe
from majlis.errors import AudioError

# name -> ffmpeg output options
FORMATS = {
    "x.wav": [],
    "x.flac": [],
    "x.mp3": [],
    "x.m4a": ["-c:a", "aac"],
    "x.ogg": ["-c:a", "libvorbis"],
    "x.opus": ["-c:a", "libopus"],
    "stereo44k.wav": ["-ac", "2", "-ar", "44100"],
}


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def reference(speech_wav) -> np.ndarray:
    return decode(speech_wav)


@pytest.fixture(scope="module")
def made(speech_wav, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("formats")
    for name, opts in FORMATS.items():
        ff("-i", str(speech_wav), *opts, str(d / name))
    # A video with sound, and one without.
    ff("-f", "lavfi", "-i", "color=c=black:s=64x64:d=30", "-i", str(speech_wav), "-shortest",
       "-c:v", "libx264", "-c:a", "aac", str(d / "video.mp4"))
    ff("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-an", str(d / "silent-film.mp4"))
    # MP3 without a Xing header (ffmpeg can only guess its duration) and AAC with its index up front.
    ff("-i", str(speech_wav), "-write_xing", "0", str(d / "noxing.mp3"))
    ff("-i", str(speech_wav), "-c:a", "aac", "-movflags", "+faststart", str(d / "faststart.m4a"))
    return d


def assert_one_line_about(e: pytest.ExceptionInfo, path: Path, *causes: str) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    assert any(c in msg for c in causes), msg
    return msg


@pytest.mark.parametrize("name", [*FORMATS, "video.mp4", "noxing.mp3", "faststart.m4a"])
def test_decodes_to_16k_mono_float32_of_the_right_length(made, reference, name, caplog):
    with caplog.at_level(logging.WARNING, logger="majlis"):
        samples = decode(made / name)
    assert not caplog.records  # a healthy file decodes without complaint
    # Decoded audio is never changed in place: it comes back read-only, mapped from a file (see below).
    assert samples.dtype == np.float32 and samples.ndim == 1 and not samples.flags.writeable
    # Encoders add a little padding (AAC priming; MP3 encoder delay, kept when no Xing/LAME header says
    # to drop it, plus up to one frame), never more than 0.15 s.
    assert abs(len(samples) - len(reference)) <= 0.15 * SAMPLE_RATE, (len(samples), len(reference))
    # The same sound, not just the same length: loudness within 1 dB of the original.
    ratio = float(np.sqrt(np.mean(samples**2)) / np.sqrt(np.mean(reference**2)))
    assert abs(20 * np.log10(ratio)) < 1.0


def test_probe_reports_the_stream(made, reference):
    info = probe(made / "x.flac")
    assert info.codec == "flac" and info.sample_rate == SAMPLE_RATE and info.channels == "mono"
    assert info.duration == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.02)
    assert not info.estimated
    assert probe(made / "noxing.mp3").estimated
    film = probe(made / "video.mp4")
    assert film.codec == "aac" and film.video and not info.video


def test_streamed_wav_without_sizes(speech_wav, reference, tmp_path):
    # ffmpeg writing to a pipe cannot go back to fill in the RIFF sizes; such files are whole.
    out = tmp_path / "piped.wav"
    with open(out, "wb") as f:
        subprocess.run([ffmpeg_binary(), "-v", "error", "-i", str(speech_wav), "-f", "wav", "-"], stdout=f, check=True)
    assert len(decode(out)) == len(reference)


def _decoded_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("majlis-decoded-*"))


@pytest.fixture
def own_tmp(tmp_path, monkeypatch) -> Path:
    """tempfile's folder for this test alone, so the decoder's files in it can be counted."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_decoded_samples_live_in_a_file_that_goes_with_them(speech_wav, own_tmp):
    import gc

    samples = decode(speech_wav)
    backing = audio.backing_file(samples)
    assert backing and Path(backing).parent == own_tmp and _decoded_files(own_tmp)
    assert np.array_equal(np.fromfile(backing, np.float32), samples)
    assert audio.backing_file(samples[1:]) is None and audio.backing_file(np.array(samples)) is None
    view = samples[100:200]
    del samples
    gc.collect()
    assert _decoded_files(own_tmp), "a slice still uses the file"
    del view
    gc.collect()
    assert _decoded_files(own_tmp) == []


def test_failed_decode_leaves_no_file(made, tmp_path, own_tmp):
    import gc

    # ffmpeg decodes what there is of a cut-off FLAC; the check against its header fails afterwards.
    path = truncate(made / "x.flac", tmp_path / "cut.flac")
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "truncated")
    del e
    gc.collect()
    assert _decoded_files(own_tmp) == []


def test_files_of_dead_processes_are_swept(speech_wav, own_tmp):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a process id that no longer runs
    orphan = own_tmp / f"{audio.DECODED_PREFIX}{dead.pid}-abc.f32"
    living = own_tmp / f"{audio.DECODED_PREFIX}{os.getppid()}-abc.f32"
    orphan.write_bytes(b"\0" * 64)
    living.write_bytes(b"\0" * 64)
    samples = decode(speech_wav)
    assert not orphan.exists() and living.exists()
    assert len(_decoded_files(own_tmp)) == 2  # the living process's file and our own
    del samples


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_release_gives_back_what_a_stage_has_read(tmp_path):
    # 10 minutes of noise: 38 MB of float32 once decoded.
    wav = tmp_path / "long.wav"
    ff("-f", "lavfi", "-i", "anoisesrc=d=600:c=pink:r=16000:a=0.1", "-ac", "1", str(wav))
    samples = decode(wav)
    before = _rss_mb()
    # Same blocks and float64 sums in both reads, so the totals match exactly whatever the CPU's SIMD width.
    block = 1 << 18
    total = sum(float(samples[i : i + block].sum(dtype=np.float64)) for i in range(0, len(samples), block))
    grown = _rss_mb() - before
    assert grown > 30, grown  # reading it all mapped every page
    audio.release(samples)
    assert _rss_mb() - before < 5
    # blocks() releases as it goes: the peak stays near one block, and the data is the same.
    peak, again = 0.0, 0.0
    for _, part in audio.blocks(samples, block):
        again += float(part.sum(dtype=np.float64))
        peak = max(peak, _rss_mb() - before)
    assert again == total and peak < 10, (again, total, peak)


def test_blocks_cover_everything_once():
    x = np.arange(10)
    got = [(i, b.tolist()) for i, b in audio.blocks(x, 4)]
    assert got == [(0, [0, 1, 2, 3]), (4, [4, 5, 6, 7]), (8, [8, 9])]


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.mp3"
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "no such file")


def test_symlink_loops_and_broken_links_are_named(tmp_path):
    (tmp_path / "a.mp3").symlink_to(tmp_path / "b.mp3")
    (tmp_path / "b.mp3").symlink_to(tmp_path / "a.mp3")
    with pytest.raises(AudioError) as e:
        decode(tmp_path / "a.mp3")
    assert_one_line_about(e, tmp_path / "a.mp3", "symbolic link loop")
    (tmp_path / "gone.mp3").symlink_to(tmp_path / "deleted.mp3")
    with pytest.raises(AudioError) as e:
        probe(tmp_path / "gone.mp3")
    assert_one_line_about(e, tmp_path / "gone.mp3", f"broken symbolic link (to {tmp_path / 'deleted.mp3'}")


def test_an_m4a_cut_inside_its_moov_box_is_truncated_not_garbage(made, tmp_path):
    data = (made / "faststart.m4a").read_bytes()
    at = data.find(b"moov") - 4
    size = int.from_bytes(data[at:at + 4], "big")
    # every cut inside the index: ffmpeg's own words for these range from "Invalid data" to an audio-less file
    for cut in range(at + 9, at + size, max(1, size // 40)):
        path = tmp_path / f"cut{cut}.m4a"
        path.write_bytes(data[:cut])
        with pytest.raises(AudioError) as e:
            probe(path)
        assert_one_line_about(e, path, "truncated (its 'moov' box, the index of the audio, is cut off after")


def test_directory(tmp_path):
    with pytest.raises(AudioError) as e:
        decode(tmp_path)
    assert_one_line_about(e, tmp_path, "directory")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "empty file")


@pytest.mark.parametrize("name,content", [
    ("notes.mp3", b"These are my notes for the panel, not a recording.\n" * 20),
    ("noise.wav", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))),
])
def test_not_audio(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "not an audio or video file")


def test_video_without_sound(made):
    with pytest.raises(AudioError) as e:
        decode(made / "silent-film.mp4")
    assert_one_line_about(e, made / "silent-film.mp4", "no audio stream")


def truncate(src: Path, dst: Path, fraction: float = 0.3, extra: int = 0) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction) + extra])
    return dst


# Every kind of file, cut to its first 30%; the MP3 without a Xing header is cut mid-frame (+7 bytes:
# its 108-byte frames would otherwise end exactly at 30% of this file, a cut no reader can see).
@pytest.mark.parametrize("name,extra", [
    ("x.wav", 0), ("x.flac", 0), ("x.mp3", 0), ("noxing.mp3", 7), ("x.m4a", 0), ("faststart.m4a", 0),
    ("x.ogg", 0), ("x.opus", 0), ("video.mp4", 0),
])
def test_truncated(made, tmp_path, name, extra):
    path = truncate(made / name, tmp_path / f"cut-{name}", extra=extra)
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "truncated", "damaged")


def test_ogg_cut_between_pages(made, tmp_path):
    # Cut exactly before the last page: every page is whole, but the stream never ends.
    data = (made / "x.ogg").read_bytes()
    path = tmp_path / "cut.ogg"
    path.write_bytes(data[: data.rindex(b"OggS")])
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "end-of-stream")


def test_damaged_middle_is_tolerated_with_a_warning(made, reference, tmp_path, caplog):
    # A few garbled bytes inside an MP3 cost a frame or two, which the decoder conceals; the recording
    # stays usable, and the user hears about it in one line.
    data = bytearray((made / "x.mp3").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 40] = bytes(40)
    path = tmp_path / "glitch.mp3"
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="majlis"):
        samples = decode(path)
    assert abs(len(samples) - len(reference)) <= 0.2 * SAMPLE_RATE
    [warning] = [r.getMessage() for r in caplog.records if r.name == "majlis"]
    assert warning.startswith(f"{path}: decoded with errors") and "\n" not in warning


def test_unreadable_file(made, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = tmp_path / "locked.wav"
    path.write_bytes((made / "x.wav").read_bytes())
    path.chmod(0)
    with pytest.raises(AudioError) as e:
        decode(path)
    assert_one_line_about(e, path, "cannot be read")


def test_ffmpeg_discovery_and_pydub(speech_wav, tmp_path):
    from majlis.export.clips import cut_clip

    exe = ffmpeg_binary()
    assert os.access(exe, os.X_OK)
    cut_clip(speech_wav, 1.0, 2.0, tmp_path / "clip.wav")
    from pydub import AudioSegment

    assert AudioSegment.converter == exe  # clips are cut by the same ffmpeg that decodes


def test_is_audio_path():
    assert is_audio_path(Path("a/Panel.MP3")) and is_audio_path(Path("x.opus")) and is_audio_path(Path("v.mp4"))
    assert not is_audio_path(Path("notes.txt")) and not is_audio_path(Path("panel.json"))
    assert audio.SAMPLE_RATE == 16000
