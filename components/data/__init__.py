"""Data layer: canonical recordings, importers, validation, windowing, splitting."""
