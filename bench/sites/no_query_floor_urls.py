"""The no-query floor's view: the breakdown's (``bench/sites/breakdown_urls.py``), at
``/v1/ping`` on a site of its own."""

from __future__ import annotations

from django.urls import path

from bench.sites.breakdown_urls import NoQueryFloorView

urlpatterns = [path("v1/ping", NoQueryFloorView.as_view())]
