"""Evaluation: the six metrics of Yuan et al. 2025, their aggregates, and the runner."""
