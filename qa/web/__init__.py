"""The HTTP edge: JSON API (/api), OpenAI-compatible API (/v1) and the chat page (/), built by `create_app`."""
