"""Prices: the catalog (`catalog`), the one cost function (`cost`) and display views (`views`)."""
