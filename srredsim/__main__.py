from srredsim.cli import main

raise SystemExit(main())
