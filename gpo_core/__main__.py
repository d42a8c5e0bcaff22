import sys

from gpo_core.cli import main

sys.exit(main())
