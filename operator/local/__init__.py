"""Local embedded mode: the launcher that stands in for Kubernetes.

It reads the same InferenceModel and Prompt YAML that goes to a cluster, validates it with the same
API types, and instead of Deployments and the routing ConfigMap it runs runtime processes and writes
the routing table to a file that a local router process watches.
"""
