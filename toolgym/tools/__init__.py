"""toolgym.tools."""
