"""The kopf operator: reconciles InferenceModel and Prompt resources into runtime pods and routing."""
