"""``python -m aiomoomoo``: the same as the ``aiomoomoo`` command."""

from ._cli import main

raise SystemExit(main())
