"""The pure core: classification, reaction measurement and sharp-move detection.

Nothing here imports Kafka, Faust, the network or the clock; the Faust agents in ``streams``
and the offline backtest both drive these same objects, which is why they agree.
"""
