"""The OpenAI Batch API on the cluster's own models: files, validation, a Redis Streams queue, workers."""
