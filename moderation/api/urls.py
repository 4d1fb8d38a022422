from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from moderation.api.views import USER_OR_INTEGRATION_AUTH, DecisionViewSet, LabelViewSet, VideoViewSet
from moderation.integrations.api import IsIntegration


class WorkbenchApiRoot(APIRootView):
    """Videos, model decisions and the trusted labels of the review workbench.

    Sign in to browse here; platforms send "Authorization: Integration <token>" and scripts
    "Authorization: Token <token>" (POST /api/token/). The OpenAPI schema is at /api/schema/ and
    its documentation at /api/docs/.
    """

    # The endpoints it lists take an integration's token: the root answered that token with "Authentication
    # credentials were not provided." (403), the first thing a platform's engineer tried.
    authentication_classes = USER_OR_INTEGRATION_AUTH
    permission_classes = [IsAuthenticated | IsIntegration]

    def get_view_name(self) -> str:
        return "Review workbench API"


class OptionalSlashRouter(DefaultRouter):
    """Routes answer with or without the trailing slash (``/api/videos/{id}/verdict`` as platforms write it)."""

    APIRootView = WorkbenchApiRoot

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("videos", VideoViewSet, basename="api-video")
router.register("decisions", DecisionViewSet, basename="api-decision")
router.register("labels", LabelViewSet, basename="api-label")
urlpatterns = router.urls
