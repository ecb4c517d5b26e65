"""majlis: searchable, speaker-attributed, time-aligned transcripts of panels and podcasts."""

__version__ = "0.1.0"
