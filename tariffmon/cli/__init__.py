"""The ``tariffmon`` command line: one module per subcommand, each a thin adapter."""
