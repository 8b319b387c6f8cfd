"""The demo (``make demo``, ``python -m samverka.demo``): a whole federation on loopback.

- :mod:`samverka.demo.run`: the steps and the account printed of them (``main``);
- :mod:`samverka.demo.content`: what the kommuner publish, from public sources;
- :mod:`samverka.demo.processes`: the server processes, started and always stopped;
- :mod:`samverka.demo.guard`: stops a server if the demo itself is killed.

Nothing is imported here, so ``python -m samverka.demo.guard`` starts fast.
"""
