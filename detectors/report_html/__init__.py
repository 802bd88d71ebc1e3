"""The HTML drift report: summary, features drifted first, inline SVG plots, no script."""

from detectors.report_html.page import order_features, render_html

__all__ = ["order_features", "render_html"]
