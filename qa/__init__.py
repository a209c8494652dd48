"""Question answering over Chinese news articles, with span-exact citations."""
