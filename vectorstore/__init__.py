"""The index layer: embeddings, the Chroma vector store, and the article/keyword store beside it.

Nothing here knows about questions or answers; `qa` builds on these parts.
"""
