"""Estimators score one architecture; they know nothing about Optuna."""
