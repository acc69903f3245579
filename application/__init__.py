"""The application layer: the use cases every face (CLI, HTTP, the ``Ledger`` library) calls.

See docs/architecture.md for the layers and what may import what."""
