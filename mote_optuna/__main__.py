import sys

from mote_optuna.cli import main

sys.exit(main())
