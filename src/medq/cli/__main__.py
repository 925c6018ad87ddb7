"""`python -m medq.cli`."""

from medq.cli import app

app()
