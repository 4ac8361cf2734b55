"""Optuna samplers by name (the one place a sampler is registered), with their options checked
against the sampler's own signature."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from mote_optuna.errors import ConfigError
from mote_optuna.motenas import MoteNasSampler

if TYPE_CHECKING:
    from mote_optuna.config import SamplerConfig


# Every sampler a study file may name (sampler_names.py), by name.
SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "nsga2": optuna.samplers.NSGAIISampler,
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "gp": optuna.samplers.GPSampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "motenas": MoteNasSampler,
}


def resumed(config: SamplerConfig, stored_trials: int) -> SamplerConfig:
    """The sampler settings for a study resumed with ``stored_trials`` trials in its storage.

    A seeded sampler restarted from its seed would propose its first candidates again (a study
    killed during trial 3 would re-propose trials 0-2). Reseeding from the seed and the number of
    stored trials gives new proposals, and the same ones for the same interruption.
    """
    if config.seed is None or stored_trials == 0:
        return config
    seed = int(np.random.SeedSequence([config.seed, stored_trials]).generate_state(1)[0])
    return dataclasses.replace(config, seed=seed)


def make_sampler(config: SamplerConfig, *, where: str = "study") -> optuna.samplers.BaseSampler:
    """The sampler named in the study file; an unknown option gives one line naming the allowed."""
    cls = SAMPLERS[config.name]
    kwargs: dict[str, Any] = dict(config.options)
    kwargs["seed"] = config.seed
    if config.population_size is not None:
        kwargs["population_size"] = config.population_size
    allowed = [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for name in kwargs:
        if name not in allowed:
            field = (
                "sampler.population_size"
                if name == "population_size"
                else f"sampler.options.{name}"
            )
            raise ConfigError(
                f"{where}: {field}: not an option of the {config.name} sampler; allowed: "
                + ", ".join(allowed)
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: sampler: {config.name}: {exc}") from None
