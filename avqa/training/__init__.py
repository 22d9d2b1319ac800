"""Training: the run spec, the training loader (dataset.py), the training loop and the evaluation of a run."""
