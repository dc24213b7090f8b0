import sys

from miad.cli import main

sys.exit(main())
