"""``python -m samverka``: the same command line as the ``samverka`` console script."""

from samverka.cli import main

main()
