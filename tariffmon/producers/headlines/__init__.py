"""Headline producers: RSS/Atom feeds (feedparser), JSON-lines and CSV files, one-off text."""
