from rest_framework.routers import DefaultRouter

from moderation.api.views import DecisionViewSet, LabelViewSet, VideoViewSet


class OptionalSlashRouter(DefaultRouter):
    """Routes answer with or without the trailing slash (``/api/videos/{id}/verdict`` as platforms write it)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("videos", VideoViewSet, basename="api-video")
router.register("decisions", DecisionViewSet, basename="api-decision")
router.register("labels", LabelViewSet, basename="api-label")
urlpatterns = router.urls
