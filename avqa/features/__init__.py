"""Features: decoding, extraction shards, the frozen encoders, question text features, temporal pooling, Zarr stores."""
