"""The runtime each model pod runs: an OpenAI-compatible server over llama.cpp."""
