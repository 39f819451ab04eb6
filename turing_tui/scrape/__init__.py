"""Scraper backends that turn a handle list into human tweets, resumably."""
