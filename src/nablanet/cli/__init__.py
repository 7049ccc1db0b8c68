"""The ``nablanet`` command line: one module per subcommand, each with
``add_parser(subparsers)`` and ``run(args) -> int`` (see :mod:`nablanet.cli.main`)."""
