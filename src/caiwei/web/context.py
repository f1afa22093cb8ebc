from .capabilities import tiles_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_tiles": [t for t in tiles_for(user) if t.built]}
