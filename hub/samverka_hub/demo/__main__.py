"""``python -m samverka_hub.demo``: see :mod:`samverka_hub.demo.run`."""

from samverka_hub.demo.run import main

raise SystemExit(main())
