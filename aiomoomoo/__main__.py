"""``python -m aiomoomoo``: the same as the ``aiomoomoo`` command."""

from .cli import main

raise SystemExit(main())
