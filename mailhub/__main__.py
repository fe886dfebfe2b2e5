"""``python -m mailhub``: the same as the ``mailhub`` console script."""

from mailhub.cli import main

raise SystemExit(main())
