"""The ``sluice`` command line: thin modules that parse, call one core function, print."""
