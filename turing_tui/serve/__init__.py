"""Serving a checkpoint over HTTP and deploying it to targets.

- :mod:`~turing_tui.serve.app`: the ASGI app (Model Zoo predict, OpenAI completions, health).
- :mod:`~turing_tui.serve.batching`: dynamic batching of concurrent requests.
- :mod:`~turing_tui.serve.server`: exposure rules, model loading, uvicorn in front or on a thread.
- :mod:`~turing_tui.serve.deploy`: the local target (a supervised background ``serve``) and
  :func:`~turing_tui.serve.deploy.local_endpoint`, the game's default endpoint.
- :mod:`~turing_tui.serve.modelzoo` and :mod:`~turing_tui.serve.hub`: the Model Zoo and
  Hugging Face Hub targets; :mod:`~turing_tui.serve.events`: their progress events.

Nothing here imports Textual; heavy libraries load inside the functions that need them.
"""
