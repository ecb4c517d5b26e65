"""majlis rename commands (being written)."""

commands: list = []
