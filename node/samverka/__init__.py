"""Samverka: a federated network where Swedish kommuner share signed AI experience.

The package is split the way data flows:

- pure logic, no I/O: :mod:`samverka.kommuner`, :mod:`samverka.signing`,
  :mod:`samverka.entries`, :mod:`samverka.validation`, :mod:`samverka.verify`;
- storage: :mod:`samverka.store`;
- network: :mod:`samverka.server`, :mod:`samverka.client`;
- the command line: :mod:`samverka.cli`.
"""

__version__ = "0.1.0"
