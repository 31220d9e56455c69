"""``python -m modeltrain.mcmdpo``: the `train` and `doctor` commands (see `cli`)."""

from modeltrain.mcmdpo.cli import main

raise SystemExit(main())
