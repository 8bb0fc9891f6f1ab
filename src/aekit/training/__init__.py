"""Training: `fit` (fit.py) over a plan of stages run by the Trainer (loop.py), with the typed
training state (state.py), options (options.py), TensorBoard summaries (summaries.py), mixed precision
and data parallelism."""

from aekit.runs.run import History
from aekit.training.fit import fit, resume
from aekit.training.loop import evaluate_loss
from aekit.training.options import LR_SCHEDULES, FitOptions, TrainingWarning, learning_rate, resolve_device

__all__ = ["LR_SCHEDULES", "FitOptions", "History", "TrainingWarning", "evaluate_loss", "fit", "learning_rate", "resolve_device", "resume"]
