"""``python -m cli ...``: the same as the ``har`` script."""

from cli.main import app

app()
