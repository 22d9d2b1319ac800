"""Data: MUSIC-AVQA annotations and vocabulary, the training dataset and batch sampler, the synthetic generator."""
