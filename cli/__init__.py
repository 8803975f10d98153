"""``inferctl``: the InferFlux command line (local mode, chat, admin commands, model pulls)."""
