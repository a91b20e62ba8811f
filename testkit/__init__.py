"""The project's test kit, shared by ``tests/`` and ``benchmarks/`` (never imported by the product).

* :mod:`testkit.audio` -- synthetic songs and encoding to every accepted format;
* :mod:`testkit.fakediscord` -- a Discord-compatible REST + gateway server on 127.0.0.1 that the
  real discord.py client talks to;
* :mod:`testkit.botharness` -- the real bot, in-process or as the ``genre-bot`` command, against it;
* :mod:`testkit.loadgen` -- bursts of /genre, latency and memory sampling;
* :mod:`testkit.pgcluster` -- a throwaway PostgreSQL server.
"""
