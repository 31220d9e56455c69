"""Pages for running a project in the browser: create and edit it, its facets, its members and
their roles, and imports of uploaded files. Only the project's admins (and staff) get here;
others get 403, non-members 404 (a project's existence is not revealed)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.models import Platform, Role, Split
from annotate.selectors import project_get_for_user
from core.errors import ApplicationError, NotFound, PermissionDenied
from preferences.models import Facet, FacetRole

from . import selectors, services


def _admin_project(request, project_id: int):
    return project_get_for_user(user=request.user, project_id=project_id, min_role=Role.ADMIN)


def _project_form(request) -> dict:
    return {
        "name": request.POST.get("name", ""),
        "guidelines": request.POST.get("guidelines", ""),
        "platforms": request.POST.getlist("platform"),
        "overlap": request.POST.get("overlap", "1"),
    }


@require_http_methods(["GET", "POST"])
@login_required
def project_new(request):
    if not selectors.user_can_create_projects(user=request.user):
        raise PermissionDenied("Only staff and project admins can create projects.")
    error, form = "", {"name": "", "guidelines": "", "platforms": [], "overlap": "1"}
    if request.method == "POST":
        form = _project_form(request)
        try:
            project = services.console_project_create(user=request.user, **form)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(request, f'Project "{project.name}" created; you are its admin.')
            return redirect("console:settings", project_id=project.pk)
    return render(
        request,
        "console/project_new.html",
        {"form": form, "error": error, "platform_choices": Platform.choices},
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
def project_settings(request, project_id: int):
    project = _admin_project(request, project_id)
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "project":
                services.console_project_update(project=project, **_project_form(request))
                messages.success(request, "Project settings saved.")
            elif action == "facets":
                rows = [
                    {
                        "id": facet.pk,
                        "label": request.POST.get(f"label-{facet.pk}", facet.label),
                        "question": request.POST.get(f"question-{facet.pk}", facet.question),
                        "is_active": request.POST.get(f"active-{facet.pk}") == "on",
                        "required": request.POST.get(f"required-{facet.pk}") == "on",
                        "role": request.POST.get(f"role-{facet.pk}", facet.role),
                    }
                    for facet in Facet.objects.filter(project=project)
                ]
                services.facets_update(project=project, rows=rows)
                messages.success(request, "Facets saved.")
            elif action == "facet-add":
                facet = services.facet_add(
                    project=project,
                    key=request.POST.get("key", ""),
                    label=request.POST.get("label", ""),
                    question=request.POST.get("question", ""),
                    role=request.POST.get("role", FacetRole.OTHER),
                )
                messages.success(request, f'Facet "{facet.label}" added.')
            else:
                raise ApplicationError("Unknown action.")
        except ApplicationError as exc:
            error = exc.message
            project.refresh_from_db()
        else:
            return redirect("console:settings", project_id=project.pk)
    return render(
        request,
        "console/project_settings.html",
        {
            "project": project,
            "facets": Facet.objects.filter(project=project),
            "facet_roles": FacetRole.choices,
            "platform_choices": Platform.choices,
            "error": error,
        },
        status=400 if error else 200,
    )


@require_GET
@login_required
def members(request, project_id: int):
    project = _admin_project(request, project_id)
    return render(
        request,
        "console/members.html",
        {
            "project": project,
            "members": selectors.project_members(project=project),
            "roles": Role.choices,
        },
    )


@require_POST
@login_required
def member_add(request, project_id: int):
    project = _admin_project(request, project_id)
    try:
        membership = services.member_add(
            project=project,
            username=request.POST.get("username", ""),
            role=request.POST.get("role", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{membership.user.get_username()} is now {membership.role} in the project."
        )
    return redirect("console:members", project_id=project.pk)


@require_POST
@login_required
def member_remove(request, project_id: int, membership_id: int):
    project = _admin_project(request, project_id)
    try:
        services.member_remove(project=project, membership_id=membership_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Member removed.")
    return redirect("console:members", project_id=project.pk)


@require_http_methods(["GET", "POST"])
@login_required
def imports(request, project_id: int):
    project = _admin_project(request, project_id)
    error = ""
    if request.method == "POST":
        try:
            job = services.import_job_create(
                project=project,
                user=request.user,
                data_files=request.FILES.getlist("data"),
                images=request.FILES.getlist("images"),
                platform=request.POST.get("platform", ""),
                split=request.POST.get("split", ""),
                strict=request.POST.get("strict") == "on",
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("console:import", project_id=project.pk, job_id=job.pk)
    return render(
        request,
        "console/imports.html",
        {
            "project": project,
            "jobs": selectors.import_jobs_for(project=project),
            "platform_choices": Platform.choices,
            "split_choices": Split.choices,
            # Django refuses a form with more files than this before any view runs.
            "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
            "error": error,
        },
        status=400 if error else 200,
    )


@require_GET
@login_required
def import_detail(request, project_id: int, job_id: int):
    project = _admin_project(request, project_id)
    job = selectors.import_job_get(project=project, job_id=job_id)
    if job is None:
        raise NotFound("No such import.")
    template = "console/import_detail.html"
    if request.htmx:
        template += "#status"
    response = render(request, template, {"project": project, "job": job})
    response["Vary"] = "HX-Request"
    return response
