"""avqa: a reproducible audio-visual question answering pipeline for MUSIC-AVQA (see README.md)."""
__version__ = "0.1.0"
