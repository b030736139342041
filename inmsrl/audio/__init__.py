"""Audio I/O, resampling and time-frequency transforms: the lowest layer of the package."""
