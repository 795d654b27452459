"""Cost of a call in USD: the operator's prices file first, then the genai-prices database.

An unknown model gets no cost (and is counted), never a guess."""

from sidecar.cost._book import Cost, PriceBook, PricesFileError, Usage, database_version

__all__ = [
    "Cost",
    "PriceBook",
    "PricesFileError",
    "Usage",
    "database_version",
]
