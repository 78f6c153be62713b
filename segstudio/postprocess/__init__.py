"""Post-processing of predicted label maps (no Qt; see the import-linter contracts in pyproject.toml)."""
