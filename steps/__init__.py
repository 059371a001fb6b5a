"""ZenML steps: thin wrappers, one per file, around ``components``."""
