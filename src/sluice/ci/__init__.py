"""Running sluice in CI: generated CI files, ``--base auto``, annotations and summaries."""
