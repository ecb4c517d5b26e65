"""majlis search commands (being written)."""

commands: list = []
