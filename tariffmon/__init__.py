"""Tariff reaction monitor: the message contract, settings, pure core and command line.

The Kafka adapters live beside this package, in ``producers`` (kafka-python) and
``streams`` (faust-streaming); both speak only the contract defined in
:mod:`tariffmon.contract`.
"""

__version__ = "0.1.0"
