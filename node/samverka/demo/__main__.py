"""``python -m samverka.demo``: see :mod:`samverka.demo.run`."""

from samverka.demo.run import main

raise SystemExit(main())
