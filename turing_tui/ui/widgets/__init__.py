"""Reusable widgets of the app: the tweet card and the score bar."""
