from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """Paths without a trailing slash; the slash variant is accepted too."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
