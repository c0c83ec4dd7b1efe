"""`python -m looptrack` runs the command line."""

from looptrack.cli import app

app()
