import sys

from triage.client.cli import main

sys.exit(main())
