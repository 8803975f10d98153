"""Realtime voice and XR sessions over WebSocket and SSE (the seeds' S6f/S16/S17 contracts)."""
