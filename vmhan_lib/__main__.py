from vmhan_lib.cli import main

raise SystemExit(main())
