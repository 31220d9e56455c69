"""Pages: the project list, a project's overview, and permission-checked image files."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Image, Post
from .selectors import project_get_for_user, project_list_for_user, project_role, project_stats


@require_GET
@login_required
def home(request):
    return render(
        request, "annotate/home.html", {"projects": project_list_for_user(user=request.user)}
    )


@require_GET
@login_required
def project_detail(request, project_id: int):
    project = project_get_for_user(user=request.user, project_id=project_id)
    posts = project.posts.select_related("image").prefetch_related("alt_texts")[:20]
    return render(
        request,
        "annotate/project_detail.html",
        {
            "project": project,
            "role": project_role(project=project, user=request.user),
            "stats": project_stats(project=project),
            "posts": posts,
        },
    )


@require_GET
@login_required
def image_file(request, sha256: str):
    """Serve an image only to members of a project that has a post showing it."""
    image = Image.objects.filter(sha256=sha256).first()
    if image is None:
        raise Http404("No such image.")
    posts = Post.objects.filter(image=image)
    if not request.user.is_staff:
        posts = posts.filter(project__members=request.user)
    if not posts.exists():
        raise Http404("No such image.")
    try:
        handle = image.file.open("rb")
    except FileNotFoundError:
        raise Http404("The image file is missing from storage.") from None
    response = FileResponse(handle, content_type=image.mime)
    response["Cache-Control"] = "private, max-age=86400"
    return response
