"""Named nets from the lectures (``nablanet train --preset NAME``).

:data:`PRESETS` maps a name to a builder ``(*, backend=None, rng=None) -> Sequential``;
:data:`RECIPES` gives the training settings that go with it (TrainConfig keys) and
:data:`PUBLISHED` the test accuracy its source reports.
"""
from .cnn import PRESETS, PUBLISHED, PUBLISHED_ENSEMBLE, RECIPES, lenet5, nielsen_ch6

__all__ = ["PRESETS", "PUBLISHED", "PUBLISHED_ENSEMBLE", "RECIPES", "lenet5", "nielsen_ch6"]
