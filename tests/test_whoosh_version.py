"""majlis.search.whoosh reads Whoosh's private format (codec blocks, term readers, length columns): it is
right for one Whoosh-Reloaded release only. Another installed, or the pin moved without the code, fails here
loudly instead of as wrong scores."""

import re
from importlib import metadata
from pathlib import Path

from majlis.search.whoosh import WHOOSH_VERSION

ROOT = Path(__file__).resolve().parents[1]


def test_installed_whoosh_is_the_one_the_private_readers_were_written_against():
    installed = metadata.version("Whoosh-Reloaded")
    assert installed == WHOOSH_VERSION, (
        f"Whoosh-Reloaded {installed} is installed, but majlis.search.whoosh was written against "
        f"{WHOOSH_VERSION}: check fastscore/phrase/postings against the new codec before moving the pin")


def test_pyproject_pins_exactly_that_version():
    pins = re.findall(r'^\s*"(whoosh-reloaded\b[^"]*)"', (ROOT / "pyproject.toml").read_text(), re.I | re.M)
    assert pins == [f"Whoosh-Reloaded=={WHOOSH_VERSION}"], pins


def test_private_whoosh_reads_stay_inside_search_whoosh():
    """Nothing outside majlis/search/whoosh imports whoosh's codec or reaches into whoosh objects' privates."""
    src = ROOT / "src" / "majlis"
    outside = [p for p in src.rglob("*.py") if (src / "search" / "whoosh") not in p.parents]
    offenders = [str(p.relative_to(src)) for p in outside
                 if re.search(r"whoosh\.codec|\._btexts|\._ix\._|\.termsreader\(", p.read_text())]
    assert offenders == []
