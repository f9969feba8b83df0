"""`python -m zerohour` is the same as the `zerohour` command."""

from zerohour.cli.main import main

raise SystemExit(main())
