"""The voice library: people's voiceprints kept in one folder, so every episode names them unaided.

    <library>/voices.json                   the manifest: schema, library id, version, name -> file
    <library>/<slug>.<version>.voice.json   one voiceprint per person: the samples it was made from

A voiceprint holds the unit mean of its samples' CAM++ prints (campplus.py), made exactly as `--speakers` makes
one from its clips, and naming compares them through the same decision (decision.match_prints): same scores,
same threshold. It also keeps the unit mean of their resemblyzer embeddings: a library whose samples were
added before prints existed is named through resemblyzer's calibrated decision (decision.decide) until its
samples are added again. Samples come from clips
(`majlis voices add`) or from a speaker of an episode already transcribed (samples.py: `majlis voices from`,
`majlis rename --learn`), embedded from that speaker's own words as naming embeds a diarized speaker.

Every change writes a new voiceprint file (a new name) and then the manifest, each whole (temp file, fsync,
rename; files.atomic_write_set), under a lock file: the manifest is the commit point, so a crash leaves the
library as it was before or after the change, never between. The version goes up by one on every change;
naming records it in the transcript's metadata, and batch mode's naming cache key holds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import OutputError, VoiceError

SCHEMA = "majlis.voices/1"
PRINT_SCHEMA = "majlis.voiceprint/1"
MANIFEST = "voices.json"
LOCK = ".voices.lock"
DEFAULT_NAME = "voices"  # the default library: a folder of this name beside the index
MIN_SECONDS = 1.0  # seconds of detected speech a sample needs (speakers.ENROLL_MIN_SPEECH)
# Transcript metadata keys naming fills in when the library named the speakers.
META_VERSION = "voice_library_version"
META_ID = "voice_library"


def default_dir(index_dir: str | os.PathLike | None) -> Path:
    """The library beside the index: `index/` -> `voices/`, `/srv/archive/index` -> `/srv/archive/voices`."""
    index = Path(index_dir) if index_dir is not None else Path("index")
    return index.parent / DEFAULT_NAME


# ------------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Person:
    name: str
    samples: int
    seconds: float  # speech the samples hold
    sources: tuple[str, ...]
    updated: str  # UTC, ISO 8601


@dataclass(frozen=True)
class Snapshot:
    """The library as naming reads it, taken once per run (a change made meanwhile waits for the next run).
    Picklable: it travels to batch workers inside pipeline.Options."""

    path: str
    id: str
    version: int
    names: tuple[str, ...]
    vectors: tuple[tuple[float, ...], ...]
    # CAM++ prints, one per name, when every voiceprint has one (samples added before they existed have none).
    prints: tuple[tuple[float, ...], ...] = ()

    @property
    def fingerprint(self) -> str:
        """The naming cache key's part for the library: its id, version and content."""
        from .files import digest

        parts = [list(v) for v in self.vectors]
        if self.prints:
            parts += [list(v) for v in self.prints]
        return digest("voices/1", self.id, self.version, list(self.names), parts)

    def voices(self) -> dict:
        """Name -> what naming compares: its CAM++ print where every voiceprint has one, else its resemblyzer
        embedding (naming tells them apart by their length, campplus.DIM)."""
        import numpy as np

        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(self.names, self.prints or self.vectors)}

    def metadata(self) -> dict[str, str]:
        return {META_ID: self.id, META_VERSION: str(self.version)}


# ------------------------------------------------------------------------------------------------ names


_UNKNOWN = re.compile(r"^(Unknown \d+|SPEAKER_\d+)$")


def check_name(name: str) -> str:
    """A person's name as the library keeps it (NFC, trimmed); VoiceError for one it cannot take."""
    n = unicodedata.normalize("NFC", str(name)).strip()
    if not n:
        raise VoiceError("a voice needs a name (got an empty one)")
    if len(n) > 100:
        raise VoiceError(f"{n[:40]!r}...: a name of at most 100 characters")
    if any(unicodedata.category(c).startswith("C") for c in n):
        raise VoiceError(f"{n!r}: control characters in a name")
    if "=" in n or "," in n:
        raise VoiceError(f"{n!r}: a name cannot hold '=' or ',' (they separate OLD=NEW and --names pairs)")
    if _UNKNOWN.match(n):
        raise VoiceError(f"{n!r} is what majlis calls a voice it does not know: give the person's name")
    return n


def _slug(name: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9]+", "-", ascii_).strip("-").lower()[:40] or "voice"
    return f"{base}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:6]}"


def _unit(vectors: Sequence) -> list[float]:
    import numpy as np

    mean = np.mean(np.asarray(vectors, dtype=np.float64), axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), 1e-9)
    return [round(float(x), 7) for x in mean.astype(np.float32)]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ------------------------------------------------------------------------------------------------ library


class VoiceLibrary:
    """A library folder. Reads need no lock (the manifest is replaced whole); changes take the lock file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.manifest_path = self.path / MANIFEST

    def __repr__(self) -> str:
        return f"VoiceLibrary({str(self.path)!r})"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    # reading ------------------------------------------------------------------------------------------

    def manifest(self) -> dict:
        """The manifest (an empty library's when there is none yet); VoiceError when it is not one."""
        if not self.manifest_path.exists():
            if self.path.exists() and not self.path.is_dir():
                raise VoiceError(f"{self.path}: not a folder (a voice library is a folder)")
            return {"schema": SCHEMA, "id": "", "version": 0, "people": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise VoiceError(f"{self.manifest_path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
        except ValueError as e:
            raise VoiceError(f"{self.manifest_path}: not JSON ({e})") from None
        self._check_manifest(data)
        return data

    def _check_manifest(self, data: Any) -> None:
        where = self.manifest_path
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise VoiceError(f"{where}: not a majlis voice library (expected schema {SCHEMA})")
        if not isinstance(data.get("version"), int) or data["version"] < 0 or not isinstance(data.get("id"), str):
            raise VoiceError(f"{where}: $.version or $.id missing or not valid")
        people = data.get("people")
        if not isinstance(people, dict):
            raise VoiceError(f"{where}: $.people is not an object")
        for name, entry in people.items():
            ok = (isinstance(entry, dict) and isinstance(entry.get("file"), str)
                  and re.fullmatch(r"[a-z0-9-]+\.\d+\.voice\.json", entry["file"]) is not None
                  and isinstance(entry.get("sha256"), str))
            if not ok:
                raise VoiceError(f"{where}: $.people[{name!r}] is not a valid entry")

    def version(self) -> int:
        return int(self.manifest()["version"])

    def people(self) -> list[Person]:
        out = []
        for name, entry in sorted(self.manifest()["people"].items(), key=lambda kv: kv[0].casefold()):
            out.append(Person(name, int(entry.get("samples", 0)), float(entry.get("seconds", 0.0)),
                              tuple(entry.get("sources", ())), str(entry.get("updated", ""))))
        return out

    def _print(self, name: str, entry: Mapping) -> dict:
        path = self.path / entry["file"]
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise VoiceError(f"{path}: {name}'s voiceprint cannot be read ({e.strerror or e})") from None
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise VoiceError(f"{path}: {name}'s voiceprint does not match the manifest (changed by hand?)")
        try:
            data = json.loads(raw)
            assert data["schema"] == PRINT_SCHEMA and data["name"] == name
            vector = [float(x) for x in data["embedding"]]
            assert vector and all(abs(x) <= 1.0 for x in vector)
            assert all(len(s["embedding"]) == len(vector) for s in data["samples"])
            if "print" in data:
                assert all(len(s["print"]) == len(data["print"]) for s in data["samples"])
        except (ValueError, KeyError, TypeError, AssertionError):
            raise VoiceError(f"{path}: not a valid voiceprint for {name}") from None
        return data

    def snapshot(self) -> Snapshot:
        """Every voiceprint, read and checked now."""
        m = self.manifest()
        names, vectors, prints = [], [], []
        for name in sorted(m["people"], key=str.casefold):
            data = self._print(name, m["people"][name])
            names.append(name)
            vectors.append(tuple(float(x) for x in data["embedding"]))
            prints.append(tuple(float(x) for x in data.get("print", ())))
        return Snapshot(str(self.path.resolve()), m["id"], int(m["version"]), tuple(names), tuple(vectors),
                        tuple(prints) if all(prints) else ())

    # changing -----------------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """OutputError now, before any long work, unless the folder takes a file."""
        from .files import check_writable

        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"{{voices}} {self.path}: exists and is not a folder", arguments=("voices",))
        check_writable(self.path, "voice library")

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        import fcntl

        self.check_writable()
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise OutputError(f"voice library {self.path}: cannot write there ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another `voices add` waits here: no change is lost
            yield self.manifest()
        finally:
            os.close(fd)

    def _commit(self, manifest: dict, files: list[tuple[Path, bytes]]) -> int:
        from .files import atomic_write_set

        manifest["version"] = int(manifest["version"]) + 1
        if not manifest["id"]:
            manifest["id"] = uuid.uuid4().hex[:16]
        text = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        # The voiceprints are new files; the manifest, renamed last, is what makes them part of the library.
        atomic_write_set([*files, (self.manifest_path, text.encode("utf-8"))])
        self._sweep(manifest)
        return manifest["version"]

    def _sweep(self, manifest: dict) -> None:
        """Remove voiceprint files no manifest entry names (replaced ones, or a crashed change's)."""
        keep = {e["file"] for e in manifest["people"].values()}
        for p in self.path.glob("*.voice.json"):
            if p.name not in keep:
                try:
                    p.unlink()
                except OSError:
                    pass

    def add(self, name: str, samples: Sequence[Mapping], *, replace: bool = False) -> int:
        """Add `samples` ({"source", "seconds", "embedding", "print"}) to `name`'s voiceprint (a new person, or more of
        a known one; `replace`: instead of what it had). Returns the new version."""
        name = check_name(name)
        if not samples:
            raise VoiceError(f"{name}: no voice samples to add")
        with self._locked() as m:
            entry = m["people"].get(name)
            old = [] if entry is None or replace else list(self._print(name, entry)["samples"])
            kept = old + [{"source": str(s["source"]), "seconds": round(float(s["seconds"]), 2),
                           "embedding": [round(float(x), 7) for x in s["embedding"]],
                           **({"print": [round(float(x), 7) for x in s["print"]]} if "print" in s else {})}
                          for s in samples]
            version = int(m["version"]) + 1
            data = {"schema": PRINT_SCHEMA, "name": name, "embedding": _unit([s["embedding"] for s in kept]),
                    "samples": kept}
            if all("print" in s for s in kept):  # one sample from before prints existed: none for the person
                data["print"] = _unit([s["print"] for s in kept])
            raw = (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
            file = f"{_slug(name)}.{version}.voice.json"
            m["people"][name] = {"file": file, "sha256": hashlib.sha256(raw).hexdigest(), "samples": len(kept),
                                 "seconds": round(sum(s["seconds"] for s in kept), 2),
                                 "sources": [s["source"] for s in kept][-20:], "updated": _now()}
            return self._commit(m, [(self.path / file, raw)])

    def remove(self, name: str) -> int:
        n = unicodedata.normalize("NFC", str(name)).strip()
        people = self.manifest()["people"]
        if n not in people:  # said before the lock, which would make the folder
            raise VoiceError(f"no voice {n!r} in the library {self.path}" + _known(people, n))
        with self._locked() as m:
            if n not in m["people"]:
                raise VoiceError(f"no voice {n!r} in the library {self.path}" + _known(m["people"], n))
            del m["people"][n]
            return self._commit(m, [])


def _known(people: Mapping, wanted: str) -> str:
    if not people:
        return " (it is empty)"
    close = [p for p in people if p.casefold() == wanted.casefold()]
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; it has {', '.join(sorted(people, key=str.casefold))}"


# ------------------------------------------------------------------------------------------- naming


def for_naming(voices_dir: str | os.PathLike | None, index_dir: str | os.PathLike | None) -> Snapshot | None:
    """The library `transcribe` and `batch` name speakers from: `voices_dir` (which must be a library), else
    the one beside the index if there is one. None when there is none or it holds nobody."""
    explicit = voices_dir is not None
    lib = VoiceLibrary(voices_dir if explicit else default_dir(index_dir))
    if not lib.exists():
        if explicit:
            raise VoiceError(f"{{voices}} {lib.path}: not a voice library (no {MANIFEST}; "
                             "majlis voices add NAME CLIP... makes one)", arguments=("voices",))
        return None
    snap = lib.snapshot()
    return snap if snap.names else None


def naming_fingerprint(options: Any) -> str:
    """What naming's cache key holds for the voices it names from: the --speakers folder's content hash, or
    the library's id, version and content, each with the naming code's version (speakers.NAMING_VERSION);
    "" with neither, as before the library existed."""
    from .files import digest, folder_fingerprint

    if options.speakers_dir is not None:
        voices = folder_fingerprint(options.speakers_dir)
    else:
        snap = getattr(options, "voices", None)
        if snap is None:
            return ""
        voices = snap.fingerprint
    from .speakers import NAMING_VERSION

    return digest(voices, NAMING_VERSION)
