from vitnirs.cli import main

raise SystemExit(main())
