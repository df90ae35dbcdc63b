from dind.cli import main

raise SystemExit(main())
