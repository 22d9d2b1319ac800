"""Training: the run spec, the training loop and the evaluation of a run."""
