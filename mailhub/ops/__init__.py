"""Operations commands: ``mailhub health``, ``import``, ``doctor`` and the metrics endpoint.

Each command lives in its own module with ``add_parser(sub)`` and ``run(args) -> int``, so the
CLI only registers them.
"""
