"""The council's hub: a Samverka node that also admits members and aggregates feeds.

The hub imports :mod:`samverka` and never the reverse. Its folder is a node folder
(origin "0000") with a certificate authority and a member directory added; see
:mod:`samverka_hub.folder` for the layout and :mod:`samverka_hub.config` for the
configuration sections the hub adds to ``samverka.toml``.

Modules, by job:

- :mod:`~samverka_hub.config`: the hub's configuration (the node's plus its own sections).
- :mod:`~samverka_hub.folder`: ``hub init`` and opening a hub folder (:class:`HubContext`).
- :mod:`~samverka_hub.tables`, :mod:`~samverka_hub.migrations`: the hub's tables, a
  migration track ``"hub"`` in the node's database.
- :mod:`~samverka_hub.members`: reading and writing those tables (:class:`MemberStore`).
- :mod:`~samverka_hub.ca`: the certificate authority and which host names a member gets.
- :mod:`~samverka_hub.council`: the decisions — enrollment, approval, rejection,
  revocation, key rotation, certificate renewal — each one transaction that also
  publishes a new signed directory version.
- :mod:`~samverka_hub.directory_watch`: a running hub's current directory, kept fresh.
- :mod:`~samverka_hub.recommendations`: the council's recommendations, records of
  its own feed (origin 0000) signed with the hub's key.
- :mod:`~samverka_hub.stats` (pure) and :mod:`~samverka_hub.insight` (its reads):
  coverage of the 290 kommuner, and federation-wide search with the hub's rules.
- :mod:`~samverka_hub.membership_service`, :mod:`~samverka_hub.aggregation_service`,
  :mod:`~samverka_hub.insight_service`, :mod:`~samverka_hub.service`: the HubService
  servicer, split by concern.
- :mod:`~samverka_hub.process`: ``hub serve``: both ports; who may call the member port
  is :class:`samverka.membership.member.DirectoryPolicy` over the current directory.
- :mod:`~samverka_hub.cli`: the ``samverka hub`` commands
  (:mod:`~samverka_hub.cli_council`: ``recommend``, ``stats``, ``search``).
"""
