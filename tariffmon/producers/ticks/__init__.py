"""Tick producers from yfinance: the streaming client's quotes and polled one-minute bars."""
