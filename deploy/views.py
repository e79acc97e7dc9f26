"""The operations page (site admins): each deployment's instances with state and load,
CAIPI's queue for the model, recent scaling decisions on a chart, and the log tail of
instances that failed to start."""

from __future__ import annotations

import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from caipi.core.permissions import SITE_ADMIN, require
from deploy import selectors
from deploy.charts import scaling_chart


@login_required
def operations(request: HttpRequest) -> HttpResponse:
    require(request.user, SITE_ADMIN)
    now = timezone.now()
    rows = selectors.operations_overview(since=now - datetime.timedelta(hours=24))
    for row in rows:
        row["chart"] = scaling_chart(
            row["chart_points"], title=f"Instances of {row['name']}", now=now
        )
    return render(request, "deploy/operations.html", {"deployments": rows, "now": now})
