"""mote_optuna: multi-objective NAS on a small budget (MOTE + FLOPs + params) with Optuna."""

__version__ = "0.1.0"
