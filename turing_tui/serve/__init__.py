"""Serving a checkpoint over HTTP and deploying it to targets."""
