"""Domain errors. The core raises these; only the CLI and HTTP edges turn them into messages."""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error this product reports to a user."""


class BadInputError(QAError):
    """A file, article or question that cannot be used, with the reason."""

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class UnsupportedFileError(BadInputError):
    """A file whose type no reader handles."""


class ArticleNotFoundError(QAError):
    def __init__(self, article_id: str):
        self.article_id = article_id
        super().__init__(f"no article with id {article_id!r}")


class UnknownComponentError(QAError):
    """A setting names a part (embedding model, answerer) that does not exist."""


class IndexMismatchError(QAError):
    """The index on disk was built with another embedding model than the one configured."""


class StoreUnavailableError(QAError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class ConfigError(QAError):
    """A setting has a value that cannot work."""
