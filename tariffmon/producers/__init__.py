"""Producers: kafka-python adapters that publish contract messages to the Kafka topics.

Sources (yfinance ticks, headline feeds and files, recorded streams) are turned into
:mod:`tariffmon.contract` messages and published with the Kafka timestamp set to the event
time.  This package never imports Faust.
"""
