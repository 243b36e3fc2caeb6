"""Cell sources of the teaching notebooks' exercises, one module per notebook (read by
``scripts/build_notebooks.py``, the single entry point that writes ``notebooks/*.ipynb``)."""
