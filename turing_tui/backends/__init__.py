"""Tweet generators behind one protocol: a local checkpoint, Model Zoo HTTP, OpenAI HTTP.

The game asks a :class:`~turing_tui.backends.base.TweetGenerator` for fake tweets and
never cares where they come from.
"""
