"""Data: MUSIC-AVQA annotations, question words, instrument labels, prompts, stand-in clips, the synthetic generator."""
