"""The router: an OpenAI-compatible gateway in front of runtime pods and external providers."""
