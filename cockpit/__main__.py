from cockpit.commands.cli import main

raise SystemExit(main())
