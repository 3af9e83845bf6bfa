from repolsp.server.cli import main

raise SystemExit(main())
