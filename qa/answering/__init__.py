"""Answerers turn a question and retrieved passages into an answer with citations."""
