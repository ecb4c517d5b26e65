"""majlis batch commands (being written)."""

commands: list = []
