"""Pure render functions: an InferenceModel (or Prompt) in, Kubernetes objects out.

Nothing here talks to the API server or reads the environment; every function is unit-tested
without a cluster. The reconcile services apply what these functions return.
"""
