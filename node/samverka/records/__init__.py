"""Records as people write them: forms, inventory import and the publisher of the own feed.
May use the protocol layer (and config, errors)."""
