"""A package in a src/ layout that root does not import: src is not on the path."""
