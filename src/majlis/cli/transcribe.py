"""majlis transcribe commands (being written)."""

commands: list = []
