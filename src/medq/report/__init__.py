"""HTML reports and galleries (Jinja2 templates, matplotlib figures)."""
