"""Audit of the event store: chains and seals verified, seals made, archives exported and
checked offline, a case's whole timeline, history replayed to a topic.

The modules: ``digest`` and ``findings`` (pure: the hashes and how evidence is named),
``chains`` (every stream's chain, batched), ``sealing`` (the sealer), ``verification``
(chains and seals of the live store), ``archive`` (export and offline check),
``timeline`` (one case across its streams), ``replay`` (history to a topic). See
``docs/audit.md`` for what each guarantee proves.
"""
