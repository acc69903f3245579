"""Personal data that can be forgotten: per-customer encryption of the fields the contract
marks ``x-personal-data``, a key store apart from the log, and crypto-shredding.

- :mod:`ledger.privacy.crypto`: the envelope (``{"enc": "v1", "kid", "n", "c"}``),
  sealing and opening values, and the batch encryption appends go through;
- :mod:`ledger.privacy.keystore`: the :class:`~ledger.privacy.keystore.KeyStore` port and
  its SQLite and PostgreSQL adapters (data keys wrapped by the master key);
- :mod:`ledger.privacy.master`: the master key (``LEDGER_MASTER_KEY`` or a key file).

See ``docs/privacy.md``.
"""
