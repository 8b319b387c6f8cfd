"""The demo (``make demo``, ``python -m samverka_hub.demo``): a whole federation on loopback.

- :mod:`samverka_hub.demo.run`: the steps and the account printed of them (``main``);
- :mod:`samverka_hub.demo.content`: what the kommuner publish, from public sources;
- :mod:`samverka_hub.demo.processes`: the server processes, started and always stopped;
- :mod:`samverka_hub.demo.guard`: stops a server if the demo itself is killed.

Nothing is imported here, so ``python -m samverka_hub.demo.guard`` starts fast.
"""
