"""Pages: a project's snapshots (admins export and download), with live progress via htmx."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Platform, Role, Split
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError
from core.jobs import QUEUE_DOWN_MESSAGE

from .models import SnapshotKind
from .selectors import snapshot_get_for_user, snapshot_list_for_project
from .services import (
    snapshot_cancel,
    snapshot_create,
    snapshot_file_path,
    snapshot_filters_build,
    snapshot_formats_parse,
    snapshot_retry,
)


def _page(request, project, status=200, form=None):
    return render(
        request,
        "snapshots/list.html",
        {
            "project": project,
            "snapshots": snapshot_list_for_project(project=project)[:50],
            "kinds": SnapshotKind.choices,
            "platforms": Platform.choices,
            "splits": Split.choices,
            "facets": project.facets.filter(is_active=True),
            "form": form or {},
        },
        status=status,
    )


@require_GET
@login_required
def snapshot_list(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    return _page(request, project)


@require_POST
@login_required
def snapshot_new(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    data = request.POST
    try:
        kind = data.get("kind", "")
        filters = snapshot_filters_build(
            kind=kind,
            project=project,
            platforms=data.getlist("platform"),
            splits=data.getlist("split"),
            min_confidence=data.get("min_confidence") or 0,
            facets=data.getlist("facet") or None,
            include_llm_only=data.get("include_llm_only") == "on",
            include_imported=data.get("exclude_imported") != "on",
            image_paths=data.get("image_paths") or "absolute",
        )
        formats = snapshot_formats_parse(data.getlist("format") or None)
        snapshot = snapshot_create(
            user=request.user, project=project, kind=kind, filters=filters, formats=formats
        )
    except ApplicationError as exc:
        # Re-show the form with what was entered, and say what to fix.
        messages.error(request, exc.message)
        return _page(request, project, status=exc.status_code, form=data)
    _started_message(request, snapshot, "started")
    return redirect("snapshots:list", project_id=project.pk)


def _started_message(request, snapshot, verb: str) -> None:
    if getattr(snapshot, "queue_down", False):
        messages.warning(request, f"Snapshot {snapshot.pk}: {QUEUE_DOWN_MESSAGE}")
    else:
        messages.success(request, f"Snapshot {snapshot.pk} {verb}.")


@require_POST
@login_required
def snapshot_cancel_view(request, snapshot_id: int):
    snapshot = snapshot_cancel(user=request.user, snapshot_id=snapshot_id)
    messages.success(request, f"Snapshot {snapshot.pk} cancelled.")
    return redirect("snapshots:detail", snapshot_id=snapshot.pk)


@require_POST
@login_required
def snapshot_retry_view(request, snapshot_id: int):
    snapshot = snapshot_retry(user=request.user, snapshot_id=snapshot_id)
    _started_message(request, snapshot, "started again")
    return redirect("snapshots:detail", snapshot_id=snapshot.pk)


@require_GET
@login_required
def snapshot_detail(request, snapshot_id: int):
    snapshot = snapshot_get_for_user(
        user=request.user, snapshot_id=snapshot_id, min_role=Role.ADMIN
    )
    # The list page polls single rows; the detail page polls itself (?full=1) and swaps <main>.
    partial = request.htmx and not request.GET.get("full")
    template = "snapshots/list.html#row" if partial else "snapshots/detail.html"
    response = render(request, template, {"s": snapshot, "project": snapshot.project})
    response["Vary"] = "HX-Request"
    return response


@require_GET
@login_required
def snapshot_download(request, snapshot_id: int, name: str):
    snapshot = snapshot_get_for_user(
        user=request.user, snapshot_id=snapshot_id, min_role=Role.ADMIN
    )
    path = snapshot_file_path(snapshot=snapshot, name=name)
    # FileResponse streams the file in blocks; nothing is read into memory.
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
