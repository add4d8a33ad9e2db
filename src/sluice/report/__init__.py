"""Level 5, above evaluate: run, budget and data reports (Markdown, HTML, JSON) with plots,
reusing the last report when nothing changed, and publishing reports to pull requests.
"""
