"""Level 3: the project on disk: config + stage graph + discovered imports + per-stage records +
outputs, and the built-in check stages.
"""
