"""majlis serve commands (being written)."""

commands: list = []
