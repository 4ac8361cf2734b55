import os
import sys

if __name__ == "__main__":  # not when a pool process (local_pool.py, spawn) imports this module
    # torch's OpenMP threads sleep instead of spinning while they wait (read when torch starts)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from mote_optuna.cli import main

    sys.exit(main())
