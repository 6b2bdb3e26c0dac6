import sys

from novawatch.cli import main

sys.exit(main())
