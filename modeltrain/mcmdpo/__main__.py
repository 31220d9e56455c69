"""`python -m modeltrain.mcmdpo ...`: the package's command line (cli.py)."""

from modeltrain.mcmdpo.cli import main

raise SystemExit(main())
