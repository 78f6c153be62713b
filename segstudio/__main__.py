"""``python -m segstudio`` is the same as the ``segstudio`` console script."""

from segstudio.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
