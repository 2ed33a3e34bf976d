from sumo.cli import main

raise SystemExit(main())
