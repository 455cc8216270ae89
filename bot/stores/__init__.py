"""The state behind the ports, in two sets side by side.

Embedded (one process, no other service): `sqlite_cache`, `media_files`, `sqlite_journal`,
`memory_limits`, `memory_flights`. Distributed (`REDIS_URL`): the `redis_*` modules. The
composition root picks one set; `tests/test_store_contracts.py` holds both to one contract.
"""
