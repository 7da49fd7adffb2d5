"""The contenders of ``python -m bench e2e`` other than the demo, each a small Django site.

Both use Django's standard middleware (as the demo does), persistent database connections and
the same redis-server as the demo.
"""
