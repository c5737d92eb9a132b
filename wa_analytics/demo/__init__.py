"""The demo: generated WhatsApp traffic sent end to end through the real service."""
