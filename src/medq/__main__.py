"""`python -m medq`: the `medq` command (as `python -m medq.cli`)."""

from medq.cli import app

app(prog_name="medq")
