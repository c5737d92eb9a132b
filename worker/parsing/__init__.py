"""Parsers from each webhook format to standardised events."""
