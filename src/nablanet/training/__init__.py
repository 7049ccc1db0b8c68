"""The training loop, its callbacks and learning-rate schedules."""
from .callbacks import Best, Callback, Checkpoint, DivergenceGuard, EarlyStopping, Progress
from .history import History
from .schedules import SCHEDULES, BoldDriver, CosineDecay, HalveOnPlateau, StepDecay
from .trainer import MONITOR_ALL, Trainer, fit

__all__ = ["Best", "BoldDriver", "Callback", "Checkpoint", "CosineDecay", "DivergenceGuard",
           "EarlyStopping", "HalveOnPlateau", "History", "MONITOR_ALL", "Progress", "SCHEDULES",
           "StepDecay", "Trainer", "fit"]
