"""shop in a src/ layout, not importable as shop from root: root's own shop/ comes first."""
