"""The one error a parser raises: the item is authentic but cannot become an event."""


class ParseError(ValueError):
    """Why an item was quarantined, in words an operator can act on."""
