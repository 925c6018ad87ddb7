"""`python -m medq.cli`: the `medq` command (named so in its messages and help)."""

from medq.cli import app

app(prog_name="medq")
