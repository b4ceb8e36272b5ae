"""The ``toolgym`` command line: thin commands over the Python API."""
